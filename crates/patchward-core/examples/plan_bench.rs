//! Planner benchmark: seeded estates of 1k, 10k and 100k servers (100k: 300k dependency
//! edges, 1,000 services, 20 windows, 4 rings), planned with explanations, then checked.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-plan cargo run --release -p patchward-core --example plan_bench [SIZES...] [--no-check]
//! ```
//! Sizes default to `1000 10000 100000`. Peak memory: run under `/usr/bin/time -v`.

use patchward_core::plan::generate::{GenConfig, generate};
use patchward_core::plan::{PlanInput, plan, verify};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = !args.iter().any(|a| a == "--no-check");
    let sizes: Vec<usize> = {
        let v: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
        if v.is_empty() {
            vec![1_000, 10_000, 100_000]
        } else {
            v
        }
    };
    for n in sizes {
        let t0 = Instant::now();
        let g = generate(&GenConfig::benchmark(n));
        let gen_time = t0.elapsed();
        let mut input = PlanInput::new("bench", &g.estate, g.start);
        input.due = g.due.clone();
        let t1 = Instant::now();
        let p = plan(&input);
        let plan_time = t1.elapsed();
        let reasons: usize = p.placements.iter().map(|x| x.reasons.len()).sum();
        println!(
            "{n:>7} servers, {:>7} dependencies, {:>5} services, {:>2} windows, {} rings: plan {:>8.1} ms (generate {:.1} ms) — {} placed in {} waves, {} unplaced, {} late, {} reasons, finish {}",
            g.estate.dependencies.len(),
            g.estate.services.len(),
            g.estate.windows.len(),
            g.estate.rings.len(),
            plan_time.as_secs_f64() * 1e3,
            gen_time.as_secs_f64() * 1e3,
            p.placements.len(),
            p.waves.len(),
            p.unplaced.len(),
            p.late.len(),
            reasons,
            p.finish.map(|f| f.to_string()).unwrap_or_default(),
        );
        if let Some(x) = p.placements.get(p.placements.len() / 2) {
            println!("         e.g. {}: {}", x.server, x.reasons.join("; "));
        }
        let mut rules = std::collections::BTreeMap::new();
        for u in &p.unplaced {
            *rules.entry(format!("{:?}", u.rule)).or_insert(0usize) += 1;
        }
        if !rules.is_empty() {
            println!("         unplaced by rule: {rules:?}");
        }
        if check {
            let t2 = Instant::now();
            let v = verify(&input, &p);
            println!(
                "         checker: {} violation(s) in {:.1} ms",
                v.len(),
                t2.elapsed().as_secs_f64() * 1e3
            );
        }
    }
}
