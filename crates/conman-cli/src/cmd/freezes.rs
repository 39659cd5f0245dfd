//! `conman env freeze`: an environment's deploy freeze windows — list,
//! add (app admins; one-off between two instants, or weekly between two
//! local weekday times in an IANA zone) and remove. The schedule is read
//! into the API's `FreezeScheduleDto`, so the CLI accepts exactly what the
//! HTTP API does and the core validates it. `--json` prints the API's
//! `data` (`FreezeWindowDto`).

use clap::Subcommand;
use conman_api::dto::{FreezeScheduleDto, FreezeWindowDto};
use conman_core::Error;
use serde_json::json;

use super::deployments::resolve_environment;
use super::resolve_app;
use crate::output::{CoreResult, Output};
use crate::session::Session;

/// `conman env freeze ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum FreezeCmd {
    /// List an environment's freeze windows.
    Ls {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Environment name or id.
        environment: String,
    },
    /// Add a freeze window (app admins): `--from T --until T` once, or
    /// `--weekly-from "friday 16:00" --weekly-until "monday 08:00" --timezone Europe/Berlin`.
    Add {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Environment name or id.
        environment: String,
        /// Why (shown to whoever is refused).
        #[arg(long)]
        reason: String,
        /// One-off: the first frozen instant (RFC 3339).
        #[arg(long, requires = "until", conflicts_with = "weekly_from")]
        from: Option<String>,
        /// One-off: the first instant no longer frozen (RFC 3339).
        #[arg(long, requires = "from")]
        until: Option<String>,
        /// Weekly: "DAY HH:MM" the window opens (local time).
        #[arg(long, requires_all = ["weekly_until", "timezone"])]
        weekly_from: Option<String>,
        /// Weekly: "DAY HH:MM" the window closes (excluded).
        #[arg(long, requires = "weekly_from")]
        weekly_until: Option<String>,
        /// Weekly: the IANA zone of those times, e.g. Europe/Berlin.
        #[arg(long, requires = "weekly_from")]
        timezone: Option<String>,
    },
    /// Remove a freeze window (app admins).
    Rm {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Freeze window id.
        window: String,
    },
}

/// Splits "DAY HH:MM" into the wire's day name and time; `mon`..`sun`
/// stand for the full names.
fn day_and_time(flag: &str, raw: &str) -> anyhow::Result<(String, String)> {
    let mut parts = raw.split_whitespace();
    let (Some(day), Some(time), None) = (parts.next(), parts.next(), parts.next()) else {
        anyhow::bail!("--{flag} takes \"DAY HH:MM\", e.g. \"friday 16:00\" (got {raw:?})");
    };
    let day = day.to_ascii_lowercase();
    let full = conman_api::dto::WEEKDAY_NAMES.iter().find(|n| **n == day || (day.len() == 3 && n.starts_with(&day)));
    Ok((full.map_or(day, |n| (*n).to_owned()), time.to_owned()))
}

fn schedule_line(s: &FreezeScheduleDto) -> String {
    match s {
        FreezeScheduleDto::OneOff { starts_at, ends_at } => format!("from {starts_at} until {ends_at}"),
        FreezeScheduleDto::Weekly { start_day, start_time, end_day, end_time, timezone } => {
            format!("weekly {start_day} {start_time} - {end_day} {end_time} {timezone}")
        }
    }
}

fn window_line(w: &FreezeWindowDto) -> String {
    format!("{}  {}  {}", w.id, schedule_line(&w.schedule), w.reason)
}

impl FreezeCmd {
    pub(crate) async fn run(self, s: &Session, out: &Output) -> anyhow::Result<()> {
        let (c, a) = (&s.conman, &s.actor);
        match self {
            FreezeCmd::Ls { app, environment } => {
                let app_id = resolve_app(s, &app).await?;
                let env = resolve_environment(s, app_id, &environment).await?;
                let windows = c.list_freeze_windows(a, app_id, env.id).await.core()?;
                let dtos: Vec<FreezeWindowDto> = windows.iter().map(FreezeWindowDto::from).collect();
                out.show(&dtos, |l| {
                    if l.is_empty() {
                        format!("no freeze windows on {}", env.name)
                    } else {
                        l.iter().map(window_line).collect::<Vec<_>>().join("\n")
                    }
                });
            }
            FreezeCmd::Add { app, environment, reason, from, until, weekly_from, weekly_until, timezone } => {
                let wire = match (from, until, weekly_from, weekly_until, timezone) {
                    (Some(from), Some(until), None, _, _) => {
                        json!({"kind": "one_off", "starts_at": from, "ends_at": until})
                    }
                    (None, None, Some(open), Some(close), Some(tz)) => {
                        let (start_day, start_time) = day_and_time("weekly-from", &open)?;
                        let (end_day, end_time) = day_and_time("weekly-until", &close)?;
                        json!({"kind": "weekly", "start_day": start_day, "start_time": start_time,
                               "end_day": end_day, "end_time": end_time, "timezone": tz})
                    }
                    _ => anyhow::bail!(
                        "say when: --from T --until T, or --weekly-from \"DAY HH:MM\" --weekly-until \"DAY HH:MM\" \
                         --timezone ZONE"
                    ),
                };
                let schedule: FreezeScheduleDto = serde_json::from_value(wire)
                    .map_err(|e| {
                        Error::invalid("schedule", "invalid", format!("the freeze schedule is not valid: {e}"))
                    })
                    .core()?;
                let app_id = resolve_app(s, &app).await?;
                let env = resolve_environment(s, app_id, &environment).await?;
                let window = c
                    .create_freeze_window(a, app_id, env.id, schedule.into_schedule().core()?, &reason)
                    .await
                    .core()?;
                out.show(&FreezeWindowDto::from(&window), |w| format!("froze {}: {}", env.name, window_line(w)));
            }
            FreezeCmd::Rm { app, window } => {
                let app_id = resolve_app(s, &app).await?;
                c.delete_freeze_window(a, app_id, window.parse().core()?).await.core()?;
                out.show(&json!({"done": true}), |_| format!("removed freeze window {window}"));
            }
        }
        Ok(())
    }
}
