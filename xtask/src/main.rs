//! Task runner: `cargo xtask <task>`. Standard library only; it runs cargo.
//!
//! Tasks:
//! - `ci`: formatting, clippy (-D warnings), tests (`--no-tests` skips them), docs
//!   (-D warnings), then the device-generic tests on wgpu (`--no-wgpu` skips them);
//! - `test-wgpu`: the device-generic tests on the wgpu backend (Debian: mesa-vulkan-drivers);
//! - `bench [criterion args]`: the criterion benches on the CPU backend;
//! - `test-tch`: the sampler tests on the libtorch CPU device (installs torch 2.9.0 from PyPI
//!   into `~/.cache/baal/torch-venv` on first use);
//! - `parity-torch [--data-dir DIR] [--seed S] [--tolerance T]`: our trainer against PyTorch
//!   on the same initial weights and batches, loss by loss;
//! - `bench-torch`: PyTorch's side of the `train/*` and `conv/*` benches;
//! - `gpu-check`: on a machine with an NVIDIA GPU, tests and benches on CUDA and wgpu (and
//!   libtorch CUDA when the torch venv exists);
//! - `reproduce <fashion-mnist|fashion-mnist-imbalanced|repeated-fashion-mnist|mnist|cifar10>
//!   [--quick] [args]`,
//!   `reproduce-cifar10 [args]`:
//!   the active-learning reproductions (see `reproduce.rs`);
//! - `e2e-label-studio [--data-dir DIR] [--keep]`: `baal serve` as the ML backend of a real
//!   Label Studio (installed into `~/.cache/baal/label-studio-venv` on first use): project,
//!   tasks, predictions, annotations created, updated and deleted (see `label_studio.rs`).

mod label_studio;
mod reproduce;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(task) = args.first() else {
        eprintln!(
            "usage: cargo xtask <ci [--no-tests] [--no-wgpu] | test-wgpu | bench [args] | \
             bench-torch | parity-torch [args] | test-tch | gpu-check | reproduce ... | \
             e2e-label-studio [--data-dir DIR] [--keep]>"
        );
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    let result = match task.as_str() {
        "ci" => ci(rest),
        "test-wgpu" => test_wgpu(),
        "bench" => bench(rest),
        "gpu-check" => gpu_check(),
        "test-tch" => test_tch(),
        "parity-torch" => parity_torch(rest),
        "bench-torch" => bench_torch(),
        "reproduce" => reproduce::reproduce(rest),
        "reproduce-cifar10" => reproduce::reproduce_cifar10(rest),
        "e2e-label-studio" => label_studio::e2e_label_studio(rest),
        other => Err(format!("unknown task '{other}'")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `cargo <args>` with extra environment, failing on a non-zero exit.
fn cargo_env(args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let started = Instant::now();
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .envs(env.iter().copied())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    eprintln!(
        "xtask: cargo {} took {:.0?}",
        args.first().copied().unwrap_or_default(),
        started.elapsed()
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed ({status})", args.join(" ")))
    }
}

fn cargo(args: &[&str]) -> Result<(), String> {
    cargo_env(args, &[])
}

/// Crates whose tests are generic over the device and run again on wgpu.
const DEVICE_GENERIC_CRATES: &[&str] = &["baal-heuristics", "baal-bayesian"];

/// `cargo test` of every device-generic crate with `feature` (a backend) compiled in, as one
/// command so that the backend is built once.
fn device_generic_tests(feature: &str, release: bool) -> Vec<String> {
    let mut args = vec!["test".to_string()];
    if release {
        args.push("--release".into());
    }
    for krate in DEVICE_GENERIC_CRATES {
        args.extend(["-p".to_string(), krate.to_string()]);
    }
    args.push("--features".into());
    let features: Vec<String> = DEVICE_GENERIC_CRATES
        .iter()
        .map(|krate| format!("{krate}/{feature}"))
        .collect();
    args.push(features.join(","));
    args
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn ci(args: &[String]) -> Result<(), String> {
    // Cheapest checks first.
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    if !args.iter().any(|a| a == "--no-tests") {
        cargo(&["test", "--workspace"])?;
    }
    cargo_env(
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    if args.iter().any(|a| a == "--no-wgpu") {
        eprintln!("xtask: wgpu tests skipped (--no-wgpu)");
        Ok(())
    } else {
        test_wgpu()
    }
}

fn vulkan_driver_present() -> bool {
    ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"]
        .iter()
        .any(|dir| std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()))
}

fn test_wgpu() -> Result<(), String> {
    if !vulkan_driver_present() {
        return Err(
            "no Vulkan driver found: install one (Debian: apt-get install mesa-vulkan-drivers) \
             or pass --no-wgpu"
                .into(),
        );
    }
    cargo(&as_strs(&device_generic_tests("wgpu", false)))
}

fn bench(args: &[String]) -> Result<(), String> {
    let mut cmd = vec!["bench", "-p", "baal-benches", "--"];
    cmd.extend(args.iter().map(String::as_str));
    cargo(&cmd)
}

/// The cache shared by every checkout: `$BAAL_CACHE_DIR`, else `$XDG_CACHE_HOME/baal`, else
/// `~/.cache/baal`.
fn cache_dir() -> PathBuf {
    std::env::var_os("BAAL_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("baal")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/baal")))
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// The venv holding PyTorch 2.9.0 (whose libtorch burn-tch 0.22 links against) and numpy:
/// `torch-venv` in [`cache_dir`], shared by every checkout.
fn torch_venv() -> PathBuf {
    cache_dir().join("torch-venv")
}

/// Runs `program args`, failing on a non-zero exit.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("xtask: {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .status()
        .map_err(|e| format!("{program}: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or(format!("{program} {} failed ({status})", args.join(" ")))
}

/// The venv's python, after creating the venv and installing PyTorch on first use (the CPU
/// wheel where download.pytorch.org is reachable, else PyPI's).
fn torch_python() -> Result<String, String> {
    let venv = torch_venv();
    let python = venv.join("bin/python").display().to_string();
    let pip = venv.join("bin/pip").display().to_string();
    let ready = Command::new(&python)
        .args(["-c", "import torch, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        run("python3", &["-m", "venv", &venv.display().to_string()])?;
        run(
            &pip,
            &[
                "install",
                "torch==2.9.0",
                "numpy",
                "--index-url",
                "https://download.pytorch.org/whl/cpu",
            ],
        )
        .or_else(|_| run(&pip, &["install", "torch==2.9.0", "numpy"]))?;
    }
    Ok(python)
}

/// Environment for building and running against the venv's libtorch.
fn torch_env() -> Result<Vec<(String, String)>, String> {
    let python = torch_python()?;
    let out = Command::new(&python)
        .args([
            "-c",
            "import torch, os; print(os.path.dirname(torch.__file__))",
        ])
        .output()
        .map_err(|e| format!("{python}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{python} cannot import torch"));
    }
    let torch_dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let path = std::env::var("PATH").unwrap_or_default();
    let bin = torch_venv().join("bin");
    Ok(vec![
        ("LIBTORCH_USE_PYTORCH".into(), "1".into()),
        ("PATH".into(), format!("{}:{path}", bin.display())),
        ("LD_LIBRARY_PATH".into(), format!("{torch_dir}/lib")),
    ])
}

fn test_tch() -> Result<(), String> {
    let env = torch_env()?;
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.push(("BURN_DEVICE", "tch"));
    cargo_env(&["test", "-p", "baal-bayesian", "--features", "tch"], &env)
}

/// Where Fashion-MNIST's IDX files are: `--data-dir DIR` in `args`, else Debian's folder.
fn fashion_mnist_dir(args: &[String]) -> Result<String, String> {
    if let Some(i) = args.iter().position(|a| a == "--data-dir") {
        return args
            .get(i + 1)
            .cloned()
            .ok_or("--data-dir needs a folder".into());
    }
    let debian = "/usr/share/datasets/fashion-mnist";
    if std::path::Path::new(debian).is_dir() {
        Ok(debian.into())
    } else {
        Err(format!(
            "Fashion-MNIST not found in {debian}: apt-get install dataset-fashion-mnist, \
             or pass --data-dir <folder of its IDX files>"
        ))
    }
}

/// `parity-torch [--data-dir DIR] [--seed S] [--tolerance T]`: PyTorch writes the small CNN's
/// initial weights, 400 Fashion-MNIST images and 200 batches and trains on them
/// (`benches/torch/parity.py`); our trainer trains the same batches from the same weights
/// (`crates/baal-reproduce/examples/parity_torch.rs`) and the losses are compared step by step.
fn parity_torch(args: &[String]) -> Result<(), String> {
    let python = torch_python()?;
    let data = fashion_mnist_dir(args)?;
    let value = |flag: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.into())
    };
    let seed = value("--seed", "0");
    let tolerance = value("--tolerance", "0.02");
    let dir = std::env::temp_dir().join(format!("baal-parity-torch-{seed}"));
    let dir = dir.display().to_string();
    run(
        &python,
        &[
            "benches/torch/parity.py",
            "write",
            &dir,
            "--data",
            &data,
            "--seed",
            &seed,
        ],
    )?;
    cargo(&[
        "run",
        "--release",
        "-p",
        "baal-reproduce",
        "--example",
        "parity_torch",
        "--",
        &dir,
        "--tolerance",
        &tolerance,
    ])
}

/// `bench-torch`: PyTorch's training steps per second on the `train/*` benches' models and
/// batches (`benches/torch/train_steps.py`), then its convolution ops at the `conv/*` benches'
/// layers (`benches/torch/conv_ops.py`), to put beside `cargo bench --bench train` and
/// `--bench conv`.
fn bench_torch() -> Result<(), String> {
    let python = torch_python()?;
    run(&python, &["benches/torch/train_steps.py"])?;
    run(&python, &["benches/torch/conv_ops.py"])
}

fn gpu_check() -> Result<(), String> {
    let nvidia = Command::new("nvidia-smi")
        .status()
        .is_ok_and(|s| s.success());
    if !nvidia {
        return Err("gpu-check needs an NVIDIA GPU (nvidia-smi failed)".into());
    }
    let mut failures = Vec::new();
    for feature in ["cuda", "wgpu"] {
        let args = device_generic_tests(feature, true);
        if let Err(e) = cargo_env(&as_strs(&args), &[("BURN_DEVICE", feature)]) {
            failures.push(e);
        }
    }
    for (feature, device) in [("cuda", "cuda"), ("wgpu", "wgpu")] {
        let env = [("BAAL_BENCH_DEVICE", device), ("BURN_DEVICE", device)];
        // The heuristics and MC inference benches (`baal-benches`).
        let bench = [
            "bench",
            "-p",
            "baal-benches",
            "--no-default-features",
            "--features",
            feature,
        ];
        if let Err(e) = cargo_env(&bench, &env) {
            failures.push(e);
        }
    }
    if let Some(Ok(env)) = torch_venv().exists().then(torch_env) {
        let mut env: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env.push(("BURN_DEVICE", "tch"));
        env.push(("BAAL_TEST_DEVICE", "tch-cuda"));
        if let Err(e) = cargo_env(&["test", "-p", "baal-bayesian", "--features", "tch"], &env) {
            failures.push(e);
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}
