use clap::Parser;

fn main() {
    let cli = match doscale::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // Under journald a usage error carries its priority like every other stderr line.
        Err(e) if e.use_stderr() && doscale::logging::journald() => {
            doscale::logging::eprint(doscale::logging::ERR, &e.render().to_string());
            std::process::exit(e.exit_code());
        }
        Err(e) => e.exit(),
    };
    std::process::exit(doscale::cmd::main(cli));
}
