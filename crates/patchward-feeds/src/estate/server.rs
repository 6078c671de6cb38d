//! `[[servers]]` entries and the self-dependency rule.

use super::*;

pub(super) fn owner(o: &Option<RawOwner>) -> Option<Owner> {
    o.as_ref().map(|o| Owner {
        name: o.name.trim().to_string(),
        email: o.email.as_ref().map(|e| e.trim().to_string()),
    })
}

/// "A depends on A" is an inventory error (the planner cannot order a server before itself):
/// directly, or through a service that A is a member of. Names the server.
pub(super) fn self_dependency(
    members: &HashMap<String, Vec<String>>,
    dependent: &DependencyTarget,
    depends_on: &DependencyTarget,
) -> Option<String> {
    let servers = |t: &DependencyTarget| -> Vec<String> {
        match t {
            DependencyTarget::Server(n) => vec![n.clone()],
            DependencyTarget::Service(n) => {
                members.get(&n.to_lowercase()).cloned().unwrap_or_default()
            }
        }
    };
    let on: Vec<String> = servers(depends_on)
        .iter()
        .map(|n| n.to_lowercase())
        .collect();
    let name = servers(dependent)
        .into_iter()
        .find(|a| on.contains(&a.to_lowercase()))?;
    Some(match (dependent, depends_on) {
        (DependencyTarget::Server(a), DependencyTarget::Server(_)) => {
            format!("server {a:?} depends on itself")
        }
        _ => format!(
            "server {name:?} depends on itself ({:?} depends on {:?}, and both include it)",
            target(dependent),
            target(depends_on)
        ),
    })
}

pub(super) fn server(cx: &mut Ctx<'_>, i: usize, s: &RawServer) -> Option<Server> {
    let name = s.name.get_ref().trim().to_string();
    let p = format!("servers[{i}] ({})", clip(&name, 40));
    let f = |k: &str| format!("{p}.{k}");
    let before = cx.errs.len();
    if !valid_server_name(&name) {
        cx.fail(
            &s.name,
            &f("name"),
            format!(
                "not a host name: {:?} (letters, digits, '-', '_', '.')",
                clip(&name, 40)
            ),
        );
    }
    let os =
        s.os.get_ref()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
    if !os.to_lowercase().contains("windows") {
        cx.fail(
            &s.os,
            &f("os"),
            format!(
                "not a Windows OS: {:?} (e.g. \"Windows Server 2022 Datacenter\")",
                clip(&os, 40)
            ),
        );
    }
    let build = match &s.build {
        None => None,
        Some(b) => cx.check(
            b,
            &f("build"),
            b.get_ref().parse::<OsBuild>().map_err(|e| e.to_string()),
        ),
    };
    let release = match &s.build {
        Some(b) => cx
            .check(b, &f("build"), release_of(&os, build.as_ref()))
            .flatten(),
        None => release_of(&os, None).ok().flatten(),
    };
    let installation = match &s.installation {
        None => None,
        Some(v) => cx.check(
            v,
            &f("installation"),
            Installation::parse(v.get_ref()).ok_or_else(|| {
                format!("unknown installation {:?} (expected \"Desktop Experience\" or \"Server Core\")", clip(v.get_ref(), 40))
            }),
        ),
    };
    let tier = match &s.tier {
        None => Some(Tier::default()),
        Some(t) => cx.check(
            t,
            &f("tier"),
            u8::try_from(*t.get_ref())
                .ok()
                .and_then(Tier::new)
                .ok_or_else(|| format!("must be 1 (most critical) to 4, got {}", t.get_ref())),
        ),
    };
    let exposure = match &s.exposure {
        None => Some(Default::default()),
        Some(e) => cx.check(e, &f("exposure"), parse_exposure(e.get_ref())),
    };
    let kbs = match &s.kbs {
        None => Some(Default::default()),
        Some(k) => cx.check(k, &f("kbs"), parse_kb_list(&k.get_ref().join(" "))),
    };
    let estimated_duration = match &s.estimated_duration {
        None => Some(None),
        Some(d) => cx
            .check(d, &f("estimated_duration"), positive_duration(d.get_ref()))
            .map(Some),
    };
    let reboot = match &s.reboot {
        None => Some(RebootPolicy::default()),
        Some(r) => cx.check(
            r,
            &f("reboot"),
            RebootPolicy::parse(r.get_ref()).ok_or_else(|| {
                format!(
                    "expected if_required, never or always, got {:?}",
                    clip(r.get_ref(), 40)
                )
            }),
        ),
    };
    let rollback = match &s.rollback {
        None => Some(None),
        Some(r) => {
            let rr = r.get_ref();
            let method = cx.check(
                &rr.method,
                &f("rollback.method"),
                parse_method(rr.method.get_ref()),
            );
            let tested_on = match &rr.tested_on {
                None => Some(None),
                Some(t) => cx
                    .check(t, &f("rollback.tested_on"), date_value(t.get_ref()))
                    .map(Some),
            };
            let automatic = match (&rr.automatic, method) {
                (Some(a), Some(m)) if *a.get_ref() && !m.is_automated() => {
                    let refused: Result<bool, String> = Err(
                        "automatic rollback needs method uninstall_kb or snapshot: the other \
                         methods are done by people"
                            .into(),
                    );
                    cx.check(a, &f("rollback.automatic"), refused)
                }
                (Some(a), _) => Some(*a.get_ref()),
                (None, _) => Some(false),
            };
            match (method, tested_on, automatic) {
                (Some(method), Some(tested_on), Some(automatic)) => Some(Some(RollbackPlan {
                    method,
                    who: rr.who.clone(),
                    tested_on,
                    notes: rr.notes.clone(),
                    automatic,
                })),
                _ => None,
            }
        }
    };
    let instant = |cx: &mut Ctx<'_>, v: &Option<S<toml::Value>>, k: &str| match v {
        None => Some(None),
        Some(t) => cx.check(t, &f(k), instant_value(t.get_ref())).map(Some),
    };
    let last_boot = instant(cx, &s.last_boot, "last_boot");
    let last_scan = instant(cx, &s.last_scan, "last_scan");
    if cx.errs.len() > before || cx.errs.truncated {
        return None;
    }
    Some(Server {
        name,
        fqdn: s
            .fqdn
            .as_ref()
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty()),
        os,
        release,
        installation,
        build,
        hotpatch: s.hotpatch.unwrap_or(false),
        roles: s.roles.iter().map(|r| Role::parse(r)).collect(),
        owner: owner(&s.owner),
        tier: tier?,
        environment: s.environment.clone(),
        site: s.site.clone(),
        exposure: exposure?,
        tags: s.tags.clone(),
        installed_kbs: kbs?,
        pending_reboot: s.pending_reboot.clone(),
        last_boot: last_boot?,
        last_scan: last_scan?,
        windows: s.windows.clone(),
        ring: s.ring.clone(),
        backup_policy: s.backup_policy.clone(),
        rollback: rollback?,
        estimated_duration: estimated_duration?,
        reboot: reboot?,
    })
}
