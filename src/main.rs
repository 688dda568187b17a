use clap::Parser;

/// mimalloc instead of the system allocator: reading a state of thousands of droplets makes
/// tens of thousands of small allocations, which glibc's malloc made a fifth of
/// `doscale evaluate`'s time (see the performance notes in the README).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = doscale::cli::Cli::parse();
    std::process::exit(doscale::cmd::main(cli));
}
