//! `ttlc token`: mint a development JWT (HS256 with `TTLC_JWT_SECRET`). The token alone goes to
//! stdout so scripts can capture it.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use ttlc_core::config::Config;

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// STREAMER, MODERATOR, VIEWER or OPERATOR.
    #[arg(long)]
    pub(crate) role: String,
    /// The stream (room id) the token is scoped to.
    #[arg(long)]
    pub(crate) stream: Option<String>,
    /// Lifetime, e.g. 30m, 1h, 7d.
    #[arg(long, default_value = "1h")]
    pub(crate) ttl: String,
}

pub(crate) fn run(config: Config, args: TokenArgs) -> anyhow::Result<ExitCode> {
    let secret = config
        .secrets
        .jwt_secret
        .as_ref()
        .context("TTLC_JWT_SECRET is not set; export it (the API must use the same secret)")?;
    let role: ttlc_api::Role = args.role.parse()?;
    let ttl = parse_ttl(&args.ttl)?;
    let token = ttlc_api::mint_token(secret.expose(), role, args.stream.as_deref(), ttl)?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// `90s`, `30m`, `1h`, `7d`, or plain seconds.
fn parse_ttl(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let (digits, unit) =
        text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 =
        digits.parse().with_context(|| format!("bad --ttl {text:?}: use e.g. 30m, 1h, 7d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => anyhow::bail!("bad --ttl unit {unit:?}: use s, m, h or d"),
    };
    anyhow::ensure!(secs > 0, "--ttl must be positive");
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::parse_ttl;

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("90").unwrap().as_secs(), 90);
        assert_eq!(parse_ttl("30m").unwrap().as_secs(), 1800);
        assert_eq!(parse_ttl("1h").unwrap().as_secs(), 3600);
        assert_eq!(parse_ttl("7d").unwrap().as_secs(), 604_800);
        assert!(parse_ttl("1w").is_err());
        assert!(parse_ttl("0").is_err());
        assert!(parse_ttl("h").is_err());
    }
}
