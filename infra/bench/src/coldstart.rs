//! Cold start of Lambda function binaries, as Lambda's init phase: from process start to the
//! function's first `GET /runtime/invocation/next` (its clients built, its init work done), under a
//! fake Runtime API on loopback. Each binary is started `runs` times, interleaved with the others so
//! machine noise falls on all alike; the report gives the median and the 90th percentile.

use axum::routing::get;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(clap::Args)]
pub struct Args {
    /// Function binaries to start (release builds).
    #[arg(long = "bin", required = true)]
    bins: Vec<PathBuf>,
    /// Starts of each binary.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Extra environment for every binary, `NAME=value` (the table, the endpoint, queue URLs).
    #[arg(long = "env")]
    env: Vec<String>,
    /// Create this DynamoDB table at `AWS_ENDPOINT_URL` first (moto), so init reads find it.
    #[arg(long)]
    create_table: Option<String>,
}

/// Starts `bin` once and returns how long it took to ask for its first invocation.
async fn one_start(bin: &PathBuf, env: &[(String, String)]) -> anyhow::Result<Duration> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
    let next = move || {
        let tx = tx.clone();
        async move {
            let _ = tx.send(Instant::now());
            // Never answer: the process is killed once it has asked.
            std::future::pending::<()>().await;
        }
    };
    let app = axum::Router::new().route("/2018-06-01/runtime/invocation/next", get(next));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = listener.local_addr()?.to_string();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let name = bin.file_name().and_then(|n| n.to_str()).unwrap_or("function").to_owned();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(bin)
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", &name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let asked = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await;
    child.kill().await.ok();
    server.abort();
    match asked {
        Ok(Some(at)) => Ok(at - started),
        _ => anyhow::bail!("{name} did not ask for an invocation within 20 s"),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let env: Vec<(String, String)> = args
        .env
        .iter()
        .map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect::<Option<_>>()
        .ok_or_else(|| anyhow::anyhow!("--env takes NAME=value"))?;
    if let Some(table) = &args.create_table {
        let endpoint = std::env::var("AWS_ENDPOINT_URL")?;
        let store = linkcrm_storage::dynamo::DynamoStore::for_endpoint(&endpoint, table);
        store.create_table().await?;
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); args.bins.len()];
    // One start each first, not counted: the page cache holds every binary before timing.
    for bin in &args.bins {
        one_start(bin, &env).await?;
    }
    for _ in 0..args.runs {
        for (i, bin) in args.bins.iter().enumerate() {
            times[i].push(one_start(bin, &env).await?);
        }
    }
    println!("| binary | size (bytes) | init median (ms) | init p90 (ms) |");
    println!("|---|---|---|---|");
    for (bin, mut t) in args.bins.iter().zip(times) {
        t.sort_unstable();
        let size = std::fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "| {} | {size} | {:.1} | {:.1} |",
            bin.file_name().unwrap().to_string_lossy(),
            ms(percentile(&t, 0.5)),
            ms(percentile(&t, 0.9))
        );
    }
    Ok(())
}
