//! Loading torchvision-layout VGG16 weights from a PyTorch `.pth` (a slim fixture written by
//! `fixtures/make_vgg16_fixture.py`: parameter k holds `arange(numel) * 1e-3 + k`).

use std::path::PathBuf;

use baal_zoo::models::{Vgg16, Vgg16Config};
use burn::module::Module;
use burn::tensor::Device;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vgg16_w16.pth")
}

fn slim(device: &Device) -> Vgg16 {
    Vgg16Config::new()
        .with_width_divisor(16)
        .with_hidden(8)
        .init(device)
        .expect("valid config")
}

/// Every parameter of a model, by path, as flat f32 values.
fn parameters(model: &Vgg16) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    use burn::module::{ModuleVisitor, Param};
    use burn::tensor::Tensor;
    struct Collect(Vec<(String, Vec<usize>, Vec<f32>)>, Vec<String>);
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.1.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.1.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let tensor = param.val();
            let path = self.1.join(".");
            self.0.push((
                path,
                tensor.dims().to_vec(),
                tensor.into_data().try_to_vec::<f32>().expect("f32"),
            ));
        }
    }
    let mut collect = Collect(Vec::new(), Vec::new());
    model.visit(&mut collect);
    collect.0
}

fn param<'a>(
    params: &'a [(String, Vec<usize>, Vec<f32>)],
    path: &str,
) -> &'a (String, Vec<usize>, Vec<f32>) {
    params
        .iter()
        .find(|(p, _, _)| p == path)
        .unwrap_or_else(|| {
            panic!(
                "no parameter {path} in {:?}",
                params.iter().map(|p| &p.0).collect::<Vec<_>>()
            )
        })
}

#[test]
fn loads_convolutions_and_hidden_dense_layers_and_keeps_the_head() {
    let device = Device::default();
    let mut model = slim(&device);
    let before = parameters(&model);
    let report = model
        .load_torchvision_weights(fixture())
        .expect("fixture loads");
    // 13 convolutions and 2 dense layers, weight and bias each.
    assert_eq!(report.loaded.len(), 30, "{:?}", report.loaded);
    let mut left_out = report.left_out.clone();
    left_out.sort();
    assert_eq!(left_out, ["classifier.6.bias", "classifier.6.weight"]);

    let after = parameters(&model);
    // State-dict order: features (conv k: 2k weight, 2k+1 bias), then classifier 0, 3, 6.
    let expect = |k: usize, i: usize| i as f32 * 1e-3 + k as f32;
    for (conv, k) in [(0, 0), (4, 8), (12, 24)] {
        let (_, dims, w) = param(&after, &format!("convs.{conv}.weight"));
        assert_eq!(dims.len(), 4);
        for (i, v) in w.iter().enumerate() {
            assert!(
                (v - expect(k, i)).abs() < 1e-4,
                "convs.{conv}.weight[{i}] = {v}"
            );
        }
        let (_, _, b) = param(&after, &format!("convs.{conv}.bias"));
        for (i, v) in b.iter().enumerate() {
            assert!(
                (v - expect(k + 1, i)).abs() < 1e-4,
                "convs.{conv}.bias[{i}] = {v}"
            );
        }
    }
    // PyTorch's Linear weight is [out, in]; Burn's is [in, out].
    for (dense, k) in [("dense", 26), ("head.dense1", 28)] {
        let (_, dims, w) = param(&after, &format!("{dense}.weight"));
        let (inputs, outputs) = (dims[0], dims[1]);
        for i in 0..inputs {
            for o in 0..outputs {
                let v = w[i * outputs + o];
                let torch = expect(k, o * inputs + i);
                assert!(
                    (v - torch).abs() < 1e-3,
                    "{dense}.weight[{i}][{o}] = {v}, torch {torch}"
                );
            }
        }
        let (_, _, b) = param(&after, &format!("{dense}.bias"));
        assert!((b[3] - expect(k + 1, 3)).abs() < 1e-4);
    }
    // The 10-class head keeps its initial weights.
    for path in ["head.dense2.weight", "head.dense2.bias"] {
        assert_eq!(param(&after, path), param(&before, path));
    }
}

#[test]
fn weights_of_another_width_are_an_error_and_leave_the_model_unchanged() {
    let device = Device::default();
    let mut model = Vgg16Config::new()
        .with_width_divisor(8)
        .with_hidden(8)
        .init(&device)
        .expect("valid config");
    let before = parameters(&model);
    let err = model
        .load_torchvision_weights(fixture())
        .expect_err("shapes differ");
    let message = err.to_string();
    assert!(message.contains("do not fit"), "{message}");
    assert!(!message.contains('\n'), "one line: {message}");
    assert_eq!(parameters(&model), before);
}

#[test]
fn missing_or_foreign_files_are_errors() {
    let device = Device::default();
    let mut model = slim(&device);
    let err = model
        .load_torchvision_weights("/nonexistent/vgg16.pth")
        .expect_err("no file");
    assert!(err.to_string().contains("/nonexistent/vgg16.pth"), "{err}");
    assert!(err.to_string().contains("vgg16-397923af.pth"), "{err}");

    let dir = std::env::temp_dir().join(format!("baal-vgg16-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let garbage = dir.join("garbage.pth");
    std::fs::write(&garbage, b"not a pytorch file at all").expect("write");
    let err = model
        .load_torchvision_weights(&garbage)
        .expect_err("not a state dict");
    assert!(err.to_string().contains("garbage.pth"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn width_divisor_must_divide_64() {
    let device = Device::default();
    for divisor in [0, 3, 128] {
        assert!(
            Vgg16Config::new()
                .with_width_divisor(divisor)
                .init(&device)
                .is_err(),
            "divisor {divisor}"
        );
    }
}
