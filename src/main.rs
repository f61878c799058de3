use clap::Parser;
use latchkey::cli::{Cli, CliError, Command};
use latchkey::config::Settings;
use latchkey::startup::Application;
use std::process::ExitCode;

/// Exit code for a configuration latchkey cannot start with.
const BAD_CONFIGURATION: u8 = 2;

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = dotenvy::dotenv()
        && !err.not_found()
    {
        eprintln!("latchkey: .env: {err}");
        return ExitCode::from(BAD_CONFIGURATION);
    }
    let serving = matches!(cli.command, None | Some(Command::Serve));
    let default_filter = if serving { "info" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_filter))
        .init();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("latchkey: {err}");
            return ExitCode::from(BAD_CONFIGURATION);
        }
    };
    match cli.command {
        None | Some(Command::Serve) => serve(settings).await,
        Some(command) => match latchkey::cli::run(command, settings).await {
            Ok(message) => {
                println!("{message}");
                ExitCode::SUCCESS
            }
            Err(CliError::Config(why)) => {
                eprintln!("latchkey: {why}");
                ExitCode::from(BAD_CONFIGURATION)
            }
            Err(CliError::Failed(why)) => {
                eprintln!("latchkey: {why}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn serve(settings: Settings) -> ExitCode {
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(err) => {
            eprintln!("latchkey: {err}");
            return ExitCode::from(BAD_CONFIGURATION);
        }
    };
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("latchkey: the server stopped: {err}");
            ExitCode::FAILURE
        }
    }
}
