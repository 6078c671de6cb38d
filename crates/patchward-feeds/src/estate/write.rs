//! Writing an estate back in the documented format.

use super::*;

/// A TOML basic string, escaped.
pub(super) fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

pub(super) fn arr(items: impl IntoIterator<Item = String>) -> String {
    let v: Vec<String> = items.into_iter().map(|s| q(&s)).collect();
    format!("[{}]", v.join(", "))
}

pub(super) fn owner_inline(o: &Owner) -> String {
    match &o.email {
        Some(e) => format!("{{ name = {}, email = {} }}", q(&o.name), q(e)),
        None => format!("{{ name = {} }}", q(&o.name)),
    }
}

pub(super) fn window_inline(w: &MaintenanceWindow, name: Option<&str>) -> String {
    let mut parts = Vec::new();
    if let Some(n) = name {
        parts.push(format!("name = {}", q(n)));
    }
    parts.push(format!("rrule = {}", q(&w.rrule)));
    if w.offset_days != 0 {
        parts.push(format!("offset_days = {}", w.offset_days));
    }
    parts.push(format!("start = {}", q(&format_time(w.start))));
    parts.push(format!("duration = {}", q(&format_duration(w.duration))));
    parts.push(format!("time_zone = {}", q(&w.time_zone)));
    if w.emergency {
        parts.push("emergency = true".into());
    }
    format!("{{ {} }}", parts.join(", "))
}

/// Write an estate in the documented TOML format. `parse(to_toml(e))` gives `e` back for any
/// estate that `parse` produced (instants are written in UTC).
pub fn to_toml(e: &Estate) -> String {
    let mut o = String::new();
    // `write!` into a String cannot fail; results are ignored rather than unwrapped.
    if e.capacity.max_in_flight.is_some()
        || e.capacity.max_in_flight_per_site.is_some()
        || !e.capacity.sites.is_empty()
    {
        o.push_str("[capacity]\n");
        if let Some(n) = e.capacity.max_in_flight {
            let _ = writeln!(o, "max_in_flight = {n}");
        }
        if let Some(n) = e.capacity.max_in_flight_per_site {
            let _ = writeln!(o, "max_in_flight_per_site = {n}");
        }
        if !e.capacity.sites.is_empty() {
            o.push_str("\n[capacity.sites]\n");
            for (site, n) in &e.capacity.sites {
                let _ = writeln!(o, "{} = {n}", q(site));
            }
        }
        o.push('\n');
    }
    for r in &e.rings {
        let _ = writeln!(
            o,
            "[[rings]]\nname = {}\norder = {}\nsoak = {}",
            q(&r.name),
            r.order,
            q(&format_duration(r.soak))
        );
        if let Some(s) = r.emergency_soak {
            let _ = writeln!(o, "emergency_soak = {}", q(&format_duration(s)));
        }
        o.push('\n');
    }
    for w in &e.windows {
        let _ = writeln!(
            o,
            "[[windows]]\nname = {}\nrrule = {}",
            q(&w.name),
            q(&w.rrule)
        );
        if w.offset_days != 0 {
            let _ = writeln!(o, "offset_days = {}", w.offset_days);
        }
        let _ = writeln!(
            o,
            "start = {}\nduration = {}\ntime_zone = {}",
            q(&format_time(w.start)),
            q(&format_duration(w.duration)),
            q(&w.time_zone)
        );
        if w.emergency {
            o.push_str("emergency = true\n");
        }
        o.push('\n');
    }
    for b in &e.blackouts {
        let scope = match &b.scope {
            BlackoutScope::Global => "global".to_string(),
            BlackoutScope::Site(n) => format!("site:{n}"),
            BlackoutScope::Service(n) => format!("service:{n}"),
            BlackoutScope::Server(n) => format!("server:{n}"),
        };
        let _ = writeln!(
            o,
            "[[blackouts]]\nname = {}\nscope = {}\nstart = {}\nend = {}",
            q(&b.name),
            q(&scope),
            q(&b.start.to_string()),
            q(&b.end.to_string())
        );
        if let Some(r) = &b.reason {
            let _ = writeln!(o, "reason = {}", q(r));
        }
        o.push('\n');
    }
    for p in &e.backup_policies {
        let _ = writeln!(
            o,
            "[[backup_policies]]\nname = {}\nsource = {}\nmax_age = {}",
            q(&p.name),
            q(&p.source),
            q(&format_duration(p.max_age))
        );
        if let Some(w) = &p.job_window {
            let default = format!("{} backup job", p.name);
            let name = (w.name != default).then_some(w.name.as_str());
            let _ = writeln!(o, "job_window = {}", window_inline(w, name));
        }
        o.push('\n');
    }
    for s in &e.services {
        let _ = writeln!(
            o,
            "[[services]]\nname = {}\nmembers = {}",
            q(&s.name),
            arr(s.members.iter().cloned())
        );
        match s.budget {
            DisruptionBudget::MaxUnavailable(n) => {
                let _ = writeln!(o, "max_unavailable = {n}");
            }
            DisruptionBudget::MaxUnavailablePercent(n) => {
                let _ = writeln!(o, "max_unavailable_percent = {n}");
            }
        }
        if let Some(ow) = &s.owner {
            let _ = writeln!(o, "owner = {}", owner_inline(ow));
        }
        if !s.probes.is_empty() {
            let probes: Vec<String> = s.probes.iter().map(probe_inline).collect();
            let _ = writeln!(o, "probes = [{}]", probes.join(", "));
        }
        if let Some(g) = s.probe_grace {
            let _ = writeln!(o, "probe_grace = {}", q(&format_duration(g)));
        }
        o.push('\n');
    }
    for d in &e.dependencies {
        let _ = writeln!(
            o,
            "[[dependencies]]\ndependent = {}\ndepends_on = {}\n",
            q(&target(&d.dependent)),
            q(&target(&d.depends_on))
        );
    }
    if let Some(c) = &e.coverage {
        let ws: Vec<String> = c
            .windows
            .iter()
            .map(|w| window_inline(w, Some(&w.name)))
            .collect();
        let _ = writeln!(o, "[coverage]\nwindows = [{}]\n", ws.join(", "));
    }
    for s in &e.servers {
        let _ = writeln!(o, "[[servers]]\nname = {}", q(&s.name));
        if let Some(f) = &s.fqdn {
            let _ = writeln!(o, "fqdn = {}", q(f));
        }
        let _ = writeln!(o, "os = {}", q(&s.os));
        if let Some(b) = s.build {
            let _ = writeln!(o, "build = {}", q(&b.to_string()));
        }
        if let Some(i) = s.installation {
            let _ = writeln!(o, "installation = {}", q(i.name()));
        }
        let _ = writeln!(o, "hotpatch = {}", s.hotpatch);
        let _ = writeln!(
            o,
            "roles = {}",
            arr(s.roles.iter().map(|r| r.label().to_string()))
        );
        if let Some(ow) = &s.owner {
            let _ = writeln!(o, "owner = {}", owner_inline(ow));
        }
        let _ = writeln!(o, "tier = {}", s.tier.0);
        if let Some(v) = &s.environment {
            let _ = writeln!(o, "environment = {}", q(v));
        }
        if let Some(v) = &s.site {
            let _ = writeln!(o, "site = {}", q(v));
        }
        let _ = writeln!(o, "exposure = {}", q(exposure_name(s.exposure)));
        let _ = writeln!(o, "tags = {}", arr(s.tags.iter().cloned()));
        let _ = writeln!(
            o,
            "kbs = {}",
            arr(s.installed_kbs.iter().map(|k| k.to_string()))
        );
        let _ = writeln!(o, "windows = {}", arr(s.windows.iter().cloned()));
        if let Some(v) = &s.ring {
            let _ = writeln!(o, "ring = {}", q(v));
        }
        if let Some(v) = &s.backup_policy {
            let _ = writeln!(o, "backup_policy = {}", q(v));
        }
        if let Some(d) = s.estimated_duration {
            let _ = writeln!(o, "estimated_duration = {}", q(&format_duration(d)));
        }
        if s.reboot != RebootPolicy::default() {
            let _ = writeln!(o, "reboot = {}", q(s.reboot.as_str()));
        }
        let _ = writeln!(
            o,
            "pending_reboot = {}",
            arr(s.pending_reboot.iter().cloned())
        );
        if let Some(t) = s.last_boot {
            let _ = writeln!(o, "last_boot = {}", q(&t.to_string()));
        }
        if let Some(t) = s.last_scan {
            let _ = writeln!(o, "last_scan = {}", q(&t.to_string()));
        }
        if let Some(r) = &s.rollback {
            let mut parts = vec![format!("method = {}", q(method_name(r.method)))];
            if let Some(w) = &r.who {
                parts.push(format!("who = {}", q(w)));
            }
            if let Some(d) = r.tested_on {
                parts.push(format!("tested_on = {}", q(&d.to_string())));
            }
            if let Some(n) = &r.notes {
                parts.push(format!("notes = {}", q(n)));
            }
            if r.automatic {
                parts.push("automatic = true".into());
            }
            let _ = writeln!(o, "rollback = {{ {} }}", parts.join(", "));
        }
        o.push('\n');
    }
    o
}

fn probe_inline(p: &HealthProbe) -> String {
    match p {
        HealthProbe::Http {
            url,
            status,
            body_contains,
        } => {
            let mut s = format!("{{ http = {}, status = {status}", q(url));
            if let Some(b) = body_contains {
                s.push_str(&format!(", body_contains = {}", q(b)));
            }
            s + " }"
        }
        HealthProbe::Tcp { host, port } if host == "localhost" => format!("{{ tcp = {port} }}"),
        HealthProbe::Tcp { host, port } if host.contains(':') => {
            format!("{{ tcp = {} }}", q(&format!("[{host}]:{port}")))
        }
        HealthProbe::Tcp { host, port } => format!("{{ tcp = {} }}", q(&format!("{host}:{port}"))),
        HealthProbe::WindowsService { name } => format!("{{ windows_service = {} }}", q(name)),
    }
}
