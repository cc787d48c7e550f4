fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(ferfs_tools::cli::mkfs_main(&args));
}
