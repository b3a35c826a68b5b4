//! The reproductions find Fashion-MNIST by themselves: the Debian folder, else a checksummed
//! download cache, else one message naming the remedies. The download is tested against a
//! local HTTP server on 127.0.0.1 that serves the Debian files (no internet needed).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use baal::burn::data::dataset::Dataset;
use baal::data::{DataError, FashionMnist, Locations, NamedDataset, Splits};

/// Fashion-MNIST as the reproductions find it: `data_dir` alone when given, else `sources`.
fn locate_fashion_mnist(data_dir: Option<&Path>, sources: &Locations) -> Result<Splits, DataError> {
    NamedDataset::FashionMnist.load_from(data_dir, sources)
}

/// A tiny HTTP server on 127.0.0.1 answering `GET /<name>` with `serve(name)`.
struct Server {
    address: String,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(serve: impl Fn(&str) -> Option<Vec<u8>> + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let address = format!("http://{}/", listener.local_addr().expect("address"));
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let (stop_flag, counter) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop_flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                answer(stream, &serve);
            }
        });
        Self {
            address,
            stop,
            requests,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let host = self
            .address
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let _ = TcpStream::connect(host);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(mut stream: TcpStream, serve: &dyn Fn(&str) -> Option<Vec<u8>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    // Skip the headers.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let name = request
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/');
    let response = match serve(name) {
        Some(body) => {
            let mut head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            head.extend(body);
            head
        }
        None => {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        }
    };
    let _ = stream.write_all(&response);
}

fn debian_files() -> Option<PathBuf> {
    baal_test_support::require_dir(
        FashionMnist::DEFAULT_DIR,
        baal_test_support::FASHION_MNIST_INSTALL,
    )
}

fn sources(cache: &Path, url: Option<String>) -> Locations {
    Locations {
        system_dir: Some(PathBuf::from("/nonexistent/fashion-mnist")),
        cache_dir: cache.to_path_buf(),
        url,
    }
}

#[test]
fn downloads_once_into_the_cache_then_reads_it_back() {
    let Some(debian) = debian_files() else {
        return;
    };
    let cache = tempfile::tempdir().expect("temp dir");
    let cache_dir = cache.path().join("fashion-mnist");
    let server = Server::start(move |name| std::fs::read(debian.join(name)).ok());
    let data = locate_fashion_mnist(None, &sources(&cache_dir, Some(server.address.clone())))
        .expect("downloaded from the local server");
    assert_eq!((data.train.len(), data.test.len()), (60_000, 10_000));
    assert_eq!(server.requests(), 4, "one request per file");
    for name in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        assert!(cache_dir.join(name).is_file(), "{name} cached");
    }
    drop(server);
    // The cache alone serves the next run: the address no longer answers.
    let again = locate_fashion_mnist(
        None,
        &sources(&cache_dir, Some("http://127.0.0.1:9/".to_string())),
    )
    .expect("read from the cache");
    assert_eq!(again.train.labels(), data.train.labels());
}

#[test]
fn a_corrupt_download_is_refused_and_the_message_names_the_remedies() {
    let Some(debian) = debian_files() else {
        return;
    };
    let cache = tempfile::tempdir().expect("temp dir");
    // Every file loses its last bytes on the way.
    let server = Server::start(move |name| {
        std::fs::read(debian.join(name)).ok().map(|mut bytes| {
            bytes.truncate(bytes.len() - 100);
            bytes
        })
    });
    let err = locate_fashion_mnist(None, &sources(cache.path(), Some(server.address.clone())))
        .expect_err("corrupt files");
    let message = err.to_string();
    assert!(message.contains("download failed"), "{message}");
    assert!(
        message.contains("apt-get install dataset-fashion-mnist"),
        "{message}"
    );
    assert!(message.contains("--data-dir"), "{message}");
    assert!(
        std::fs::read_dir(cache.path())
            .expect("cache dir")
            .flatten()
            .all(|entry| !entry.file_name().to_string_lossy().ends_with(".gz")),
        "nothing corrupt is cached"
    );
}

#[test]
fn without_data_or_downloads_the_message_names_both_places_and_remedies() {
    let cache = tempfile::tempdir().expect("temp dir");
    let err = locate_fashion_mnist(None, &sources(cache.path(), None)).expect_err("no data");
    let message = err.to_string();
    assert!(message.contains("/nonexistent/fashion-mnist"), "{message}");
    assert!(
        message.contains(&cache.path().display().to_string()),
        "{message}"
    );
    assert!(
        message.contains("apt-get install dataset-fashion-mnist"),
        "{message}"
    );
    assert!(message.contains("download"), "{message}");
    // An explicit folder is used alone, and named when it fails.
    let err = locate_fashion_mnist(
        Some(Path::new("/nonexistent/given")),
        &sources(cache.path(), None),
    )
    .expect_err("no data there");
    assert!(err.to_string().contains("/nonexistent/given"), "{err}");
}
