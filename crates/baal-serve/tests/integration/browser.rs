//! The labelling page in a real browser: headless Chromium driven through chromedriver
//! (WebDriver) labels items with the number keys, undoes with Backspace, and the test checks
//! the labels the service holds (and its journal), the counts and learning curve the page
//! shows, and that the page fits a laptop screen without scrolling. Then the page's rough
//! edges: a key pressed the moment the next item shows, a held-down key, Ctrl+digit, a lease
//! that ended under the page, and a change of annotator name.
//!
//! Needs `chromedriver` and Chromium (Debian: `apt-get install chromium chromium-driver`);
//! `CHROMEDRIVER` and `CHROME_BIN` name other binaries. Without them the test fails, unless
//! `BAAL_SKIP_BROWSER=1` asks to skip it. `BAAL_SCREENSHOT=path.png` saves a screenshot of the
//! page (docs/images/labelling-page.png is made so).

use std::collections::HashMap;

use burn::data::dataset::Dataset;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baal_data::{DatasetIndex, FashionMnist, ImageDataset};
use baal_test_support::{not_run, on_path, require_program};

/// The page's classes: Fashion-MNIST's.
const CLASSES: [&str; 10] = FashionMnist::CLASSES;
use baal_serve::{
    Event, Items, LabelJournal, LabelStore, LeaseId, Round, ServeError, Service, Source,
    StoreConfig, http::Server,
};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const TOKEN: &str = "browsertesttoken0123456789";
const N_ITEMS: usize = 30;
const SIDE: usize = 32;
/// Items labelled from the start (a seed set): the service trains a first model at once.
const SEEDS: [(usize, usize); 3] = [(27, 0), (28, 1), (29, 2)];
/// How long the page may take for anything (Chromium starts slowly on a busy machine).
const PATIENCE: Duration = Duration::from_secs(30);

/// A scorer that trains nothing: it ranks the pool by item index (first item most
/// informative) and reports an accuracy that grows with the labels, so the page's learning
/// curve has points.
struct IndexScorer;

impl baal_serve::Scorer for IndexScorer {
    fn round(
        &mut self,
        labels: &[(DatasetIndex, usize)],
        pool: &[DatasetIndex],
    ) -> Result<Round, ServeError> {
        let n = labels.len();
        Ok(Round {
            ranking: pool
                .iter()
                .map(|&i| (i, 1.0 - i.get() as f32 / N_ITEMS as f32))
                .collect(),
            predictions: HashMap::new(),
            accuracy: Some(0.9 - 0.7 * (-(n as f64) / 4.0).exp()),
            train_loss: 1.0 / (n as f64 + 1.0),
            n_labelled: n,
            seconds: 0.0,
        })
    }
}

/// The items: for the docs' screenshot the first Fashion-MNIST training images when Debian's
/// package is installed, else small RGB pictures, each different (rings of a colour that
/// depends on the item).
fn images() -> ImageDataset {
    let fashion = std::env::var_os("BAAL_SCREENSHOT")
        .and_then(|_| baal_data::FashionMnist::from_default_dir().ok());
    if let Some(data) = fashion {
        let mut pixels = Vec::new();
        for i in 0..N_ITEMS {
            pixels.extend(data.train.get(i).expect("an image").image);
        }
        return ImageDataset::new(pixels, vec![0; N_ITEMS], data.train.shape(), CLASSES.len())
            .expect("valid images");
    }
    let mut pixels = Vec::with_capacity(N_ITEMS * 3 * SIDE * SIDE);
    for item in 0..N_ITEMS {
        let colour = [
            (40 + item * 7) % 256,
            (200 + item * 53) % 256,
            (120 + item * 101) % 256,
        ];
        for c in colour {
            for y in 0..SIDE {
                for x in 0..SIDE {
                    let (dx, dy) = (x as f32 - 15.5, y as f32 - 15.5);
                    let ring = ((dx * dx + dy * dy).sqrt() as usize / (2 + item % 4)) % 2;
                    pixels.push(if ring == 0 { c as u8 } else { 245 });
                }
            }
        }
    }
    ImageDataset::new(pixels, vec![0; N_ITEMS], [3, SIDE, SIDE], CLASSES.len())
        .expect("valid images")
}

fn store_config() -> StoreConfig {
    StoreConfig {
        classes: CLASSES.iter().map(|c| (*c).to_string()).collect(),
        n_items: N_ITEMS,
        seed_labels: SEEDS
            .iter()
            .map(|&(i, c)| (DatasetIndex::new(i), c))
            .collect(),
        lease_ttl: Duration::from_secs(300),
        retrain_every: 2,
        initial_order: (0..N_ITEMS).map(DatasetIndex::new).collect(),
    }
}

/// The service on 127.0.0.1 with a state in `dir`.
fn start_service(dir: &Path) -> (Arc<Service>, Server) {
    let config = store_config();
    let items = Items {
        images: images(),
        files: None,
        classes: config.classes.clone(),
        seed_labels: config.seed_labels.clone(),
        test: None,
    };
    let store = LabelStore::open(dir, config).expect("opens the store");
    let (service, _worker) = Service::start(store, items, Box::new(IndexScorer), TOKEN.into())
        .expect("starts the service");
    let server = Server::start(
        Arc::clone(&service),
        "127.0.0.1:0".parse().expect("an address"),
    )
    .expect("starts the server");
    (service, server)
}

/// chromedriver, started on a free port in a process group of its own; dropping it kills the
/// group (chromedriver and the browsers it started), also when the test fails.
struct Chromedriver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Chromedriver {
    fn start(binary: &Path, log: PathBuf) -> Self {
        use std::os::unix::process::CommandExt;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut driver = Self { child, port, log };
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!(
                    "chromedriver exited ({status}) before listening on port {port}:\n{}",
                    driver.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port} within {PATIENCE:?}:\n{}",
                driver.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        driver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The group's id is chromedriver's pid (process_group(0)).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `script` (the body of a function run in the page) until `ready` accepts its value.
async fn wait_for_js(
    client: &Client,
    what: &str,
    script: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value = client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{what}: the script failed: {e}"));
        if ready(&value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {PATIENCE:?}; the page shows {value}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Polls `check` until it gives a value.
async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// What the page shows: the item, whether its picture has loaded, the counts, the message.
const PAGE_STATE: &str = r##"
const img = document.getElementById("item");
const text = (id) => document.getElementById(id).textContent;
return {
  item: img.hidden || !img.dataset.item ? null : Number(img.dataset.item),
  loaded: !img.hidden && img.complete && img.naturalWidth > 0,
  buttons: document.querySelectorAll("#classes button").length,
  labelled: Number(text("labelled")),
  pool: Number(text("pool")),
  model: text("model"),
  current: text("current"),
  message: text("message"),
  error: document.getElementById("message").classList.contains("error"),
  points: document.querySelectorAll("#curve circle").length,
};
"##;

/// Whether the page fits the window: nothing to scroll, and every part of it inside the
/// viewport (the body clips overflow, so the scroll size alone would not tell).
const FITS: &str = r##"
const root = document.scrollingElement;
const [w, h] = [window.innerWidth, window.innerHeight];
const outside = [];
const parts = document.querySelectorAll(
  "#stage, #item, #classes button, #message, #side h1, #side label, #side dl, #curve, #side figcaption, #side .keys");
for (const element of parts) {
  if (element.hidden) continue;
  const r = element.getBoundingClientRect();
  if (r.top < 0 || r.left < 0 || r.bottom > h + 0.5 || r.right > w + 0.5 || r.height === 0) {
    outside.push(`${element.id || element.className || element.tagName} ${JSON.stringify(r)}`);
  }
}
const image = document.getElementById("item").getBoundingClientRect();
return {
  width: w, height: h,
  scrollWidth: root.scrollWidth, scrollHeight: root.scrollHeight,
  imageSide: Math.min(image.width, image.height),
  outside,
};
"##;

/// Presses `key` (dispatched as a keydown) the moment the page shows an item other than the
/// one it shows now, in the task after it (as a person who presses a key as soon as the next
/// picture appears), and records that item in `window.atOnce`.
const PRESS_AT_ONCE: &str = r##"
const [key] = arguments;
const img = document.getElementById("item");
const seen = img.dataset.item;
const observer = new MutationObserver(() => {
  if (!img.dataset.item || img.dataset.item === seen) return;
  observer.disconnect();
  window.atOnce = Number(img.dataset.item);
  setTimeout(() => document.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true })));
});
observer.observe(img, { attributes: true });
"##;

/// Keys that are not labels: a held-down key's repeat, and shortcuts with Ctrl, Alt or Meta.
/// Returns whether the page started a request for them.
const IGNORED_KEYS: &str = r##"
for (const init of [{ repeat: true }, { ctrlKey: true }, { altKey: true }, { metaKey: true }]) {
  document.dispatchEvent(new KeyboardEvent("keydown", { key: "8", bubbles: true, ...init }));
}
return state.busy;
"##;

/// The page's current lease.
const CURRENT_LEASE: &str = "return state.current && !state.busy ? state.current : null;";

/// The lease and item of [`CURRENT_LEASE`]'s answer.
/// Waits until the page says `notice` and shows a loaded item other than `item`; its state.
async fn wait_for_moved_on(client: &Client, what: &str, notice: &str, item: usize) -> Value {
    wait_for_js(client, what, PAGE_STATE, |s| {
        s["message"].as_str().is_some_and(|m| m.starts_with(notice))
            && s["item"].is_number()
            && s["item"] != item
            && s["loaded"] == true
    })
    .await
}

fn lease_of(current: &Value) -> (u64, usize) {
    let item = current["item"].as_u64().expect("an item");
    (
        current["lease"].as_u64().expect("a lease"),
        usize::try_from(item).expect("an index"),
    )
}

/// The item the page shows (a number) once its picture has loaded.
fn shown_item(state: &Value) -> usize {
    let item = state["item"].as_u64().expect("an item");
    usize::try_from(item).expect("an index")
}

/// A journal line in brief: `label ITEM CLASS ANNOTATOR` or `unlabel ITEM`.
fn label_line(item: usize, class: usize, annotator: &str) -> String {
    format!("label {item} {class} {annotator}")
}

fn web_labels(service: &Service) -> Vec<(usize, usize)> {
    let store = service.store();
    store
        .labels()
        .into_iter()
        .filter(|&(item, _)| {
            store
                .label_of(item)
                .is_some_and(|info| info.source == Some(Source::Web))
        })
        .map(|(item, class)| (item.get(), class))
        .collect()
}

/// The browser's part: everything between opening the page and closing the session.
/// Returns the journal it expects, in brief (see [`label_line`]).
async fn drive(client: Client, service: Arc<Service>, addr: SocketAddr) -> Vec<String> {
    client
        .goto(&format!("http://{addr}/#token={TOKEN}"))
        .await
        .expect("opens the page");
    let first = wait_for_js(&client, "the first item", PAGE_STATE, |s| {
        s["loaded"] == true && s["item"].is_number() && s["buttons"] == CLASSES.len()
    })
    .await;
    assert_eq!(first["error"], false, "{first}");
    let body = client.find(Locator::Css("body")).await.expect("a body");
    // A first visit gets a name of its own (two people who keep the default do not share it).
    let name = client
        .execute("return document.getElementById('annotator').value;", vec![])
        .await
        .expect("reads the name");
    let name = name.as_str().expect("a name").to_string();
    assert!(
        name.len() == "annotator-".len() + 4 && name.starts_with("annotator-"),
        "{name}"
    );

    // Label five items with the keys 1 to 5, each as soon as the page shows the next item.
    let mut pressed = Vec::new();
    for (key, class) in ["1", "2", "3", "4", "5"].into_iter().zip(0..) {
        let shown = wait_for_js(&client, "an item to label", PAGE_STATE, |s| {
            s["item"].is_number()
        })
        .await;
        let item = shown["item"].as_u64().expect("an item") as usize;
        assert_eq!(
            shown["current"],
            item.to_string(),
            "the side panel names it"
        );
        body.send_keys(key).await.expect("sends a key");
        let after = wait_for_js(&client, "the next item after a label", PAGE_STATE, |s| {
            s["item"] != shown["item"] && s["item"].is_number()
        })
        .await;
        assert_eq!(after["error"], false, "{after}");
        pressed.push((item, class));
        assert!(
            web_labels(&service).contains(&(item, class)),
            "key {key} labelled item {item} as class {class} before the page moved on: {:?}",
            web_labels(&service)
        );
    }
    assert_eq!(web_labels(&service).len(), 5, "{:?}", web_labels(&service));

    // Backspace undoes the last label, durably, and the page says so.
    body.send_keys(&Key::Backspace)
        .await
        .expect("sends Backspace");
    let (undone, undone_class) = pressed[4];
    wait_for("the undo", || {
        (web_labels(&service).len() == 4).then_some(())
    })
    .await;
    let mut expected = pressed[..4].to_vec();
    expected.sort_unstable();
    assert_eq!(
        web_labels(&service),
        expected,
        "the four first labels stay, with the classes of the keys pressed"
    );
    {
        let store = service.store();
        assert!(
            store.label_of(DatasetIndex::new(undone)).is_none(),
            "item {undone} is unlabelled again"
        );
        for &(item, _) in &expected {
            let info = store.label_of(DatasetIndex::new(item)).expect("a label");
            assert_eq!(info.annotator, name);
        }
        assert_eq!(store.labels().len(), SEEDS.len() + 4, "seeds + 4 labels");
    }
    let undo_message = format!("undid item {undone} ({})", CLASSES[undone_class]);
    let status = service.status();
    let shown = wait_for_js(&client, "the counts after the undo", PAGE_STATE, |s| {
        s["labelled"] == status.n_labelled
            && s["pool"] == status.n_pool
            && s["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(&undo_message))
    })
    .await;
    assert_eq!(shown["error"], false, "{shown}");
    assert_eq!(shown["labelled"], SEEDS.len() + 4);
    assert_eq!(shown["pool"], N_ITEMS - SEEDS.len() - 4);

    // The model rounds so far are the curve's points.
    let rounds = wait_for("model rounds", || {
        let status = service.status();
        (!status.training && status.history.len() >= 2).then_some(status.history.len())
    })
    .await;
    let version = service.status().model_version;
    let shown = wait_for_js(&client, "the curve and model version", PAGE_STATE, |s| {
        s["points"].as_u64() == Some(rounds as u64) && s["model"] == format!("v{version}")
    })
    .await;
    assert_eq!(shown["error"], false, "{shown}");

    // A laptop screen holds the whole page: nothing to scroll, nothing cut off. These are the
    // window's sizes; the page gets them less the browser's own bars (about 1366×625 and
    // 1280×657 in headless Chromium), as it would on such a laptop.
    for (width, height) in [(1366, 768), (1280, 800)] {
        client
            .set_window_size(width, height)
            .await
            .expect("resizes the window");
        let fits = wait_for_js(&client, "the layout", FITS, |f| {
            f["width"].as_u64().is_some_and(|w| w > 1000)
        })
        .await;
        let (w, h) = (fits["width"].as_f64(), fits["height"].as_f64());
        assert!(
            fits["scrollHeight"].as_f64() <= h && fits["scrollWidth"].as_f64() <= w,
            "{width}×{height}: the page scrolls: {fits}"
        );
        assert_eq!(
            fits["outside"],
            json!([]),
            "{width}×{height}: parts of the page outside the window: {fits}"
        );
        assert!(
            fits["imageSide"].as_f64().is_some_and(|s| s >= 400.0),
            "{width}×{height}: the item is shown large: {fits}"
        );
        eprintln!(
            "window {width}×{height}: viewport {}×{}, page {}×{}, item {} px: fits",
            fits["width"],
            fits["height"],
            fits["scrollWidth"],
            fits["scrollHeight"],
            fits["imageSide"]
        );
    }

    let mut journal: Vec<String> = pressed
        .iter()
        .map(|&(item, class)| label_line(item, class, &name))
        .collect();
    journal.push(format!("unlabel {undone}"));

    // A key pressed the moment the next item shows is not lost: the page leases the item
    // after it in the background, not while it waits for keys.
    let shown = wait_for_js(&client, "an item to label", PAGE_STATE, |s| {
        s["loaded"] == true
    })
    .await;
    let first = shown_item(&shown);
    client
        .execute(PRESS_AT_ONCE, vec![json!("7")])
        .await
        .expect("installs the key press");
    body.send_keys("6").await.expect("sends a key");
    let second = wait_for_js(
        &client,
        "the next item",
        "return window.atOnce ?? null;",
        |v| v.is_number(),
    )
    .await;
    let second = usize::try_from(second.as_u64().expect("an item")).expect("an index");
    wait_for("the key pressed at once", || {
        let labels = web_labels(&service);
        (labels.contains(&(first, 5)) && labels.contains(&(second, 6))).then_some(())
    })
    .await;
    journal.push(label_line(first, 5, &name));
    journal.push(label_line(second, 6, &name));

    // A held-down key labels one item, not a run of them; Ctrl+8 and friends are no labels.
    let current = wait_for_js(&client, "the page at rest", CURRENT_LEASE, Value::is_object).await;
    let busy = client
        .execute(IGNORED_KEYS, vec![])
        .await
        .expect("sends keys");
    assert_eq!(busy, false, "the page acted on a repeat or a shortcut");

    // A lease that ended (the annotator was away, or the service restarted) does not leave the
    // page stuck: the key says it was not saved and the page moves on to a fresh item.
    let (lease, item) = lease_of(&current);
    service
        .skip(&name, LeaseId(lease))
        .expect("gives the page's lease back");
    body.send_keys("0").await.expect("sends a key");
    let shown = wait_for_moved_on(
        &client,
        "a fresh item after a lost lease",
        &format!("not saved: the lease on item {item} ended"),
        item,
    )
    .await;
    assert!(
        service.store().label_of(DatasetIndex::new(item)).is_none(),
        "a lost lease labels nothing"
    );
    let fresh = shown_item(&shown);
    wait_for_js(&client, "the page at rest", CURRENT_LEASE, Value::is_object).await;
    body.send_keys("0").await.expect("sends a key");
    wait_for("the label of the fresh item", || {
        web_labels(&service).contains(&(fresh, 9)).then_some(())
    })
    .await;
    journal.push(label_line(fresh, 9, &name));

    // Another page under the same name answers the lease this one shows: this page's key does
    // not overwrite that label, and the page moves on.
    let current = wait_for_js(&client, "the page at rest", CURRENT_LEASE, Value::is_object).await;
    let (lease, item) = lease_of(&current);
    service
        .label(&name, LeaseId(lease), 3)
        .expect("labels from another page");
    body.send_keys("1").await.expect("sends a key");
    wait_for_moved_on(
        &client,
        "a fresh item after a label from elsewhere",
        &format!("not saved: item {item} was labelled already"),
        item,
    )
    .await;
    assert_eq!(
        web_labels(&service).iter().find(|l| l.0 == item),
        Some(&(item, 3))
    );
    journal.push(label_line(item, 3, &name));

    // Another name: Enter takes it and returns to labelling; the page gives the old name's
    // leases back and labels under the new one.
    let input = client
        .find(Locator::Id("annotator"))
        .await
        .expect("the input");
    // Ctrl+A selects the old name, typing replaces it.
    input
        .send_keys(&format!(
            "{}a{}alice{}",
            Key::Control,
            Key::Null,
            Key::Enter
        ))
        .await
        .expect("types a name");
    wait_for_js(&client, "the new name", PAGE_STATE, |s| {
        s["message"] == "labelling as alice" && s["loaded"] == true
    })
    .await;
    wait_for("the old name's leases given back", || {
        (service.status().leased == 2).then_some(())
    })
    .await;
    let current = wait_for_js(&client, "the page at rest", CURRENT_LEASE, Value::is_object).await;
    let item = usize::try_from(current["item"].as_u64().expect("an item")).expect("an index");
    body.send_keys("9").await.expect("sends a key");
    wait_for("alice's label", || {
        let store = service.store();
        store
            .label_of(DatasetIndex::new(item))
            .is_some_and(|info| info.class == 8 && info.annotator == "alice")
            .then_some(())
    })
    .await;
    journal.push(label_line(item, 8, "alice"));

    if let Some(path) = std::env::var_os("BAAL_SCREENSHOT") {
        // The picture the docs show: an item, the last label's message, the curve up to date.
        wait_for("the last model round", || {
            let store = service.store();
            (!store.training() && !store.retrain_due()).then_some(())
        })
        .await;
        let rounds = service.status().history.len();
        wait_for_js(&client, "the page before the screenshot", PAGE_STATE, |s| {
            s["loaded"] == true
                && s["points"] == rounds
                && s["labelled"] == service.status().n_labelled
        })
        .await;
        let png = client.screenshot().await.expect("a screenshot");
        std::fs::write(&path, png).expect("writes the screenshot");
        eprintln!("screenshot saved to {}", PathBuf::from(path).display());
    }
    journal
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_labels_with_keys_and_undoes_with_backspace() {
    const INSTALL: &str = "Debian: apt-get install chromium chromium-driver";
    let Some(driver_binary) = require_program("chromedriver", "CHROMEDRIVER", INSTALL) else {
        return;
    };
    // chromedriver finds the browser itself; without one it fails only once asked for a page.
    let browser = match std::env::var_os("CHROME_BIN") {
        Some(binary) => Some(PathBuf::from(binary)).filter(|path| path.is_file()),
        None => ["chromium", "chromium-browser", "google-chrome"]
            .into_iter()
            .find_map(on_path),
    };
    if browser.is_none() {
        not_run(&format!(
            "no Chromium ($CHROME_BIN, or chromium, chromium-browser or google-chrome on the PATH; {INSTALL})"
        ));
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary folder");
    let state = dir.path().join("state");
    let (service, server) = start_service(&state);
    let driver = Chromedriver::start(&driver_binary, dir.path().join("chromedriver.log"));

    let mut chrome = json!({
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,800",
            format!("--user-data-dir={}", dir.path().join("profile").display()),
        ],
    });
    if let Some(binary) = browser.filter(|_| std::env::var_os("CHROME_BIN").is_some()) {
        chrome["binary"] = json!(binary);
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert("goog:chromeOptions".into(), chrome);
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "chromedriver cannot start Chromium: {e}\n{}",
                driver.log_text()
            )
        });

    // On a panic in the browser's part, close the session before failing too.
    let outcome = tokio::spawn(drive(client.clone(), Arc::clone(&service), server.addr())).await;
    let _ = client.close().await;
    drop(driver);
    server.stop().expect("the server stops");
    let expected = match outcome {
        Ok(expected) => expected,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    };
    let labels_held = service.store().labels();
    drop(service);

    // On disk: every label the keys gave, and the undo, in order.
    let (_, events) = LabelJournal::open(state.join("labels.journal")).expect("reads the journal");
    let journal: Vec<String> = events
        .iter()
        .map(|event| match event {
            Event::Label {
                item,
                class,
                annotator,
                source,
                ..
            } => {
                assert_eq!(*source, Source::Web);
                label_line(item.get(), *class, annotator)
            }
            Event::Unlabel { item, .. } => format!("unlabel {item}"),
            Event::AnnotationDeleted { annotation, .. } => format!("deleted {annotation}"),
        })
        .collect();
    assert_eq!(journal, expected);

    // A restart on the same state holds the same labels.
    let store = LabelStore::open(&state, store_config()).expect("reopens the state");
    let labels: Vec<(usize, usize)> = labels_held
        .into_iter()
        .map(|(item, class)| (item.get(), class))
        .collect();
    assert_eq!(labels.len(), SEEDS.len() + 9, "the seeds and 9 labels");
    let reopened: Vec<(usize, usize)> = store
        .labels()
        .into_iter()
        .map(|(item, class)| (item.get(), class))
        .collect();
    assert_eq!(reopened, labels);
}
