use clap::Parser;

/// mimalloc: loading and saving a state of thousands of droplets is allocation-bound; with
/// glibc's allocator a third of `evaluate`'s time went to malloc and free (see README,
/// "Performance").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = doscale::cli::Cli::parse();
    std::process::exit(doscale::cmd::main(cli));
}
