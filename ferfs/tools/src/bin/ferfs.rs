fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    // Invoked as mkfs.ferfs / fsck.ferfs (symlinks): act as that tool.
    let argv0 = args.first().cloned().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    args.remove(0);
    let code = match name.as_str() {
        "mkfs.ferfs" | "mkfs-ferfs" => ferfs_tools::cli::mkfs_main(&args),
        "fsck.ferfs" | "fsck-ferfs" => ferfs_tools::cli::fsck_main(&args),
        _ => match args.first().map(|s| s.as_str()) {
            Some("mkfs") => ferfs_tools::cli::mkfs_main(&args[1..]),
            Some("fsck") => ferfs_tools::cli::fsck_main(&args[1..]),
            _ => ferfs_tools::cli::ferfs_main(&args),
        },
    };
    std::process::exit(code);
}
