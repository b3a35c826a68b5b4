//! `cargo xtask reproduce <fashion-mnist|fashion-mnist-imbalanced|repeated-fashion-mnist|mnist|cifar10> [args]` and
//! `cargo xtask reproduce-cifar10 [args]`: build the `reproduce` binary of `baal-reproduce` in
//! release mode, with the backend feature its `--device` needs, and run it. Arguments are
//! passed through (`--quick`, `--seed`, `--seeds`, `--out`, `--data-dir`, `--device`, ...);
//! results land in `results/<dataset>/{summary.md,curves.csv,curves.svg}`.

use std::process::Command;

/// The cargo feature of `baal-reproduce` that compiles the backend of `--device <name>` in.
fn feature_for_device(args: &[String]) -> Option<&'static str> {
    let device = args
        .iter()
        .position(|a| a == "--device")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
        .or_else(|| args.iter().find_map(|a| a.strip_prefix("--device=")))?;
    match device.split(':').next().unwrap_or_default() {
        "cuda" => Some("cuda"),
        "wgpu" => Some("wgpu"),
        // The facade's parse_device compiles these two in only with their own features.
        "vulkan" => Some("vulkan"),
        "metal" => Some("metal"),
        "tch-cpu" | "tch-cuda" => Some("tch"),
        _ => None,
    }
}

/// Runs the reproduction of `args[0]` with the remaining arguments.
pub fn reproduce(args: &[String]) -> Result<(), String> {
    let Some(dataset) = args.first() else {
        return Err(
            "usage: cargo xtask reproduce <fashion-mnist|fashion-mnist-imbalanced|\
             repeated-fashion-mnist|mnist|cifar10> \
             [--quick] [--seed S] [--seeds N] [--out DIR] [--data-dir DIR] [--device NAME] \
             (the reproduce binary's --help lists every option)"
                .into(),
        );
    };
    // The dataset's name is checked by the reproduce binary itself (its `DatasetName`), so
    // that a new dataset needs no change here.
    let mut cargo_args: Vec<String> = ["run", "--release", "-p", "baal-reproduce"]
        .map(String::from)
        .to_vec();
    if let Some(feature) = feature_for_device(args) {
        cargo_args.extend(["--features".into(), feature.into()]);
    }
    cargo_args.extend(["--bin".into(), "reproduce".into(), "--".into()]);
    cargo_args.extend(args.iter().cloned());
    eprintln!("xtask: cargo {}", cargo_args.join(" "));
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(&cargo_args)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("reproduce {dataset} failed ({status})"))
    }
}

/// `reproduce cifar10` (baal's CIFAR-10 experiment: VGG16, BALD against random).
pub fn reproduce_cifar10(args: &[String]) -> Result<(), String> {
    let mut all = vec!["cifar10".to_string()];
    all.extend(args.iter().cloned());
    reproduce(&all)
}

#[cfg(test)]
mod tests {
    use super::feature_for_device;

    fn feature(args: &[&str]) -> Option<&'static str> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        feature_for_device(&args)
    }

    #[test]
    fn each_device_gets_the_feature_parse_device_needs() {
        // `baal::device::parse_device` compiles vulkan and metal in only with their own
        // facade features; wgpu alone is not enough.
        assert_eq!(feature(&["fashion-mnist", "--device", "vulkan"]), Some("vulkan"));
        assert_eq!(feature(&["fashion-mnist", "--device=metal"]), Some("metal"));
        assert_eq!(feature(&["fashion-mnist", "--device", "wgpu"]), Some("wgpu"));
        assert_eq!(feature(&["fashion-mnist", "--device", "cuda:1"]), Some("cuda"));
        assert_eq!(feature(&["fashion-mnist", "--device", "tch-cpu"]), Some("tch"));
        assert_eq!(feature(&["fashion-mnist", "--device", "cpu"]), None);
        assert_eq!(feature(&["fashion-mnist"]), None);
    }
}
