use latchkey::config::Settings;
use latchkey::startup::Application;
use std::process::ExitCode;

/// Exit code for a configuration latchkey cannot start with.
const BAD_CONFIGURATION: u8 = 2;

#[actix_web::main]
async fn main() -> ExitCode {
    if let Some(argument) = std::env::args().nth(1) {
        eprintln!("latchkey: unknown command {argument:?}: with no arguments latchkey serves");
        return ExitCode::from(BAD_CONFIGURATION);
    }
    if let Err(err) = dotenvy::dotenv()
        && !err.not_found()
    {
        eprintln!("latchkey: .env: {err}");
        return ExitCode::from(BAD_CONFIGURATION);
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("latchkey: {err}");
            return ExitCode::from(BAD_CONFIGURATION);
        }
    };
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
