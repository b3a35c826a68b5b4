//! Writes a pool of simulated MC-dropout predictions `[N, C, T]` to an `.npy` file, as a model
//! would produce them, for trying `baal score`.
//!
//! `cargo run -p baal --example make_predictions -- preds.npy [N] [C] [T] [seed]`
//!
//! Each item has a true class, a difficulty (how flat its predictions are) and a disagreement
//! (how much the MC samples' logits vary): easy items are confident and agree, ambiguous items
//! are flat, and items near the decision boundary of an uncertain model disagree.

use baal::bayesian::seeds;
use baal::data::formats::npy::encode_f32;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .ok_or("usage: make_predictions OUT.npy [N] [C] [T] [seed]")?;
    let number = |i: usize, default: u64| -> Result<u64, String> {
        args.get(i).map_or(Ok(default), |s| {
            s.parse()
                .map_err(|_| format!("argument {i} ('{s}') is not a number"))
        })
    };
    let (n, c, t) = (
        number(1, 2000)? as usize,
        number(2, 10)? as usize,
        number(3, 20)? as usize,
    );
    if n == 0 || c < 2 || t == 0 {
        return Err("need N >= 1, C >= 2, T >= 1".into());
    }
    // Uniform draws from the seed plan's mixing function: enough randomness for a demo.
    let mut state = number(4, 0)?.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut uniform = move || {
        state = seeds::member(state, 1);
        (seeds::mix(state) >> 11) as f32 / (1u64 << 53) as f32
    };
    let mut values = vec![0f32; n * c * t];
    let mut logits = vec![0f32; c];
    for item in 0..n {
        let class = (uniform() * c as f32) as usize % c;
        let confidence = 6.0 * uniform();
        let disagreement = 4.0 * uniform() * uniform();
        let base: Vec<f32> = (0..c).map(|_| uniform() - 0.5).collect();
        for it in 0..t {
            for (k, l) in logits.iter_mut().enumerate() {
                let signal = if k == class { confidence } else { 0.0 };
                *l = signal + base[k] + disagreement * (uniform() - 0.5) * 2.0;
            }
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let total: f32 = logits.iter().map(|l| (l - max).exp()).sum();
            for (k, l) in logits.iter().enumerate() {
                values[(item * c + k) * t + it] = (l - max).exp() / total;
            }
        }
    }
    std::fs::write(path, encode_f32(&[n, c, t], &values))?;
    eprintln!("wrote {n}x{c}x{t} predictions to {path}");
    Ok(())
}
