//! The solver ladder without the CLI: `cargo bench -p qmec-qubo --bench
//! ladder -- [SIZES] [SEED] [EXPORT_DIR] [SOLVERS]`, e.g. `-- 5x4,100x10 1 target/q`.
//! Prints solve time and optimality gap per solver and size, like
//! `qmec qubo --bench`, and can export the instances for neal_peer.py.

use qmec_qubo::bench::{LadderEvent, ladder, parse_size};

fn main() -> Result<(), qmec_qubo::QuboError> {
    // cargo passes `--bench`; the positional arguments follow.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let sizes = args
        .first()
        .map_or("3x3,4x4,5x4,8x5,20x5,40x5,100x5,100x10", String::as_str);
    let seed = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let export = args.get(2).map(std::path::PathBuf::from);
    let sizes = sizes
        .split(',')
        .map(parse_size)
        .collect::<Result<Vec<_>, _>>()?;
    let solvers: Vec<String> = args
        .get(3)
        .map_or(
            "exact,exact-onehot,greedy,sa,sb,dsb,qaoa,qaoa-xy",
            String::as_str,
        )
        .split(',')
        .map(str::to_string)
        .collect();
    ladder(&sizes, seed, &solvers, export.as_deref(), |event| {
        if let LadderEvent::Line(line) = event {
            println!("{line}");
        }
    })?;
    Ok(())
}
