use clap::Parser;

fn main() {
    let cli = doscale::cli::Cli::parse();
    std::process::exit(doscale::cmd::main(cli));
}
