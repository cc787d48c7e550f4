//! Write the fuzz seed corpus: `cargo run -p ferfs-tools --example fuzz_seeds DIR`.

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ferfs/fuzz/seeds".into());
    std::fs::create_dir_all(&dir).expect("create the seed directory");
    for (name, data) in ferfs_tools::fuzzing::seed_images().expect("make the seed images") {
        let path = format!("{dir}/{name}");
        std::fs::write(&path, &data).expect("write a seed");
        println!("{path}: {} bytes", data.len());
    }
}
