//! A seeded, deterministic estate generator for benchmarks and property tests (no `rand`
//! dependency: xorshift64*). The same [`GenConfig`] always gives the same estate.
//!
//! Dependencies follow a realistic layering (infrastructure ← data ← application ← front end):
//! a server only depends on servers of the layer below (infrastructure servers on
//! lower-numbered infrastructure servers), so generated estates are acyclic unless `cycles`
//! asks for a few back edges.

use crate::inventory::{
    BackupPolicy, Blackout, BlackoutScope, Capacity, Coverage, Dependency, DependencyTarget,
    DisruptionBudget, Estate, MaintenanceWindow, Ring, Role, Server, Service, Tier,
};
use jiff::civil::Time;
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;

/// xorshift64* — tiny, fast, good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (0 when `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    pub seed: u64,
    pub servers: usize,
    /// Server → server dependency edges (approximate: duplicates are dropped).
    pub edges: usize,
    pub services: usize,
    pub windows: usize,
    pub rings: usize,
    pub sites: usize,
    pub blackouts: usize,
    pub backup_policies: usize,
    pub coverage: bool,
    pub capacity: Capacity,
    /// Back edges that create dependency cycles.
    pub cycles: usize,
    /// Percentage of servers with a due date.
    pub due_percent: u64,
    /// Percentage of servers with an explicit estimated duration.
    pub custom_duration_percent: u64,
    /// Emergency windows among `windows`.
    pub emergency_windows: usize,
    /// Servers (mostly infrastructure and data, which others depend on) left without a
    /// maintenance window, so they cannot be placed.
    pub unplaceable: usize,
    /// Servers that depend on themselves (an inventory error the planner reports).
    pub self_dependencies: usize,
}

impl GenConfig {
    /// The benchmark shape scaled to `servers`: 3 edges and 0.01 services per server,
    /// 20 windows, 4 rings.
    pub fn benchmark(servers: usize) -> GenConfig {
        GenConfig {
            seed: 42,
            servers,
            edges: servers * 3,
            services: (servers / 100).max(1),
            windows: 20,
            rings: 4,
            sites: 10,
            blackouts: 2,
            backup_policies: 3,
            coverage: false,
            capacity: Capacity {
                max_in_flight: Some((servers as u32 / 20).max(10)),
                max_in_flight_per_site: Some((servers as u32 / 100).max(4)),
                sites: BTreeMap::new(),
            },
            cycles: 0,
            due_percent: 30,
            custom_duration_percent: 10,
            emergency_windows: 1,
            unplaceable: 0,
            self_dependencies: 0,
        }
    }

    /// A small estate for property tests.
    pub fn small(seed: u64, servers: usize) -> GenConfig {
        let mut r = Rng::new(seed);
        let mut cfg = GenConfig {
            seed,
            servers,
            edges: r.below(servers as u64 * 2 + 1) as usize,
            services: r.below(servers as u64 / 3 + 2) as usize,
            windows: 1 + r.below(4) as usize,
            rings: r.below(4) as usize,
            sites: 1 + r.below(3) as usize,
            blackouts: r.below(3) as usize,
            backup_policies: r.below(3) as usize,
            coverage: r.chance(30),
            capacity: Capacity {
                max_in_flight: r.chance(50).then(|| 1 + r.below(6) as u32),
                max_in_flight_per_site: r.chance(40).then(|| 1 + r.below(3) as u32),
                sites: BTreeMap::new(),
            },
            cycles: if r.chance(20) { 1 } else { 0 },
            due_percent: 50,
            custom_duration_percent: 30,
            emergency_windows: r.below(2) as usize,
            unplaceable: 0,
            self_dependencies: 0,
        };
        // Drawn last so that the settings above stay what they were for a given seed.
        cfg.unplaceable = r.below(servers as u64 / 4 + 1) as usize;
        cfg.self_dependencies = usize::from(r.chance(20));
        if r.chance(40) {
            // One site with its own limit, tighter or looser than the default.
            cfg.capacity.sites.insert(
                format!("SITE-{}", r.below(cfg.sites as u64)),
                1 + r.below(3) as u32,
            );
        }
        cfg
    }
}

/// A generated estate with the inputs a plan needs.
#[derive(Debug, Clone)]
pub struct Generated {
    pub estate: Estate,
    pub due: BTreeMap<String, Timestamp>,
    pub start: Timestamp,
}

const ZONES: &[&str] = &[
    "America/Los_Angeles",
    "Europe/Berlin",
    "UTC",
    "America/New_York",
];

fn window(r: &mut Rng, k: usize, emergency: bool) -> MaintenanceWindow {
    // Every fifth window is monthly (servers only get those as a second window, so rings are
    // not held up a month by one server); the rest are daily or weekly.
    let (rrule, offset, dur_h) = if k % 5 == 4 {
        match r.below(2) {
            0 => ("FREQ=MONTHLY;BYDAY=2TU".to_string(), r.below(12) as i32, 6),
            _ => ("FREQ=MONTHLY;BYDAY=-1FR".to_string(), 1, 10),
        }
    } else {
        match r.below(4) {
            0 => ("FREQ=DAILY".to_string(), 0, 4),
            1 => ("FREQ=WEEKLY;BYDAY=SA,SU".to_string(), 0, 8),
            2 => ("FREQ=WEEKLY;BYDAY=TU,TH".to_string(), 0, 3),
            _ => ("FREQ=WEEKLY;BYDAY=WE".to_string(), 0, 5),
        }
    };
    let hour = [20i8, 21, 22, 23, 0, 1, 2][r.below(7) as usize];
    MaintenanceWindow {
        name: format!("{}window-{k:02}", if emergency { "emergency-" } else { "" }),
        rrule: if emergency {
            "FREQ=DAILY".into()
        } else {
            rrule
        },
        offset_days: offset,
        start: Time::constant(hour, 0, 0, 0),
        duration: SignedDuration::from_hours(dur_h),
        time_zone: ZONES[r.below(ZONES.len() as u64) as usize].to_string(),
        emergency,
    }
}

/// Generate an estate. Deterministic for a given config.
pub fn generate(cfg: &GenConfig) -> Generated {
    let mut r = Rng::new(cfg.seed);
    let start: Timestamp = Timestamp::constant(1_794_096_000, 0); // 2026-11-08T00:00:00Z (a Sunday)
    let n = cfg.servers;
    let name = |i: usize| format!("SRV-{i:06}");

    let mut windows: Vec<MaintenanceWindow> = (0..cfg.windows.max(1))
        .map(|k| {
            window(
                &mut r,
                k,
                k < cfg.emergency_windows && k + 1 < cfg.windows.max(1),
            )
        })
        .collect();
    // Make sure at least one non-emergency window exists.
    if windows.iter().all(|w| w.emergency)
        && let Some(w) = windows.last_mut()
    {
        w.emergency = false;
    }
    let rings: Vec<Ring> = (0..cfg.rings)
        .map(|k| Ring {
            name: [
                "pilot",
                "production",
                "critical",
                "high-impact",
                "ring-5",
                "ring-6",
            ]
            .get(k)
            .map_or_else(|| format!("ring-{k}"), |s| s.to_string()),
            order: k as u32 + 1,
            soak: SignedDuration::from_hours([24, 24, 48, 24, 12, 12][k % 6]),
            emergency_soak: Some(SignedDuration::from_hours(4)),
        })
        .collect();
    let backup_policies: Vec<BackupPolicy> = (0..cfg.backup_policies)
        .map(|k| BackupPolicy {
            name: format!("backup-{k}"),
            source: format!("Veeam job {k}"),
            max_age: SignedDuration::from_hours(26),
            job_window: Some(MaintenanceWindow {
                name: format!("backup-{k}"),
                rrule: "FREQ=DAILY".into(),
                offset_days: 0,
                start: Time::constant([1i8, 2, 23][k % 3], 0, 0, 0),
                duration: SignedDuration::from_hours(1 + (k % 3) as i64),
                time_zone: ZONES[k % ZONES.len()].to_string(),
                emergency: false,
            }),
        })
        .collect();
    // Windows a server may have as its first (non-emergency, not monthly when avoidable).
    let mut primary: Vec<String> = windows
        .iter()
        .enumerate()
        .filter(|(k, w)| !w.emergency && k % 5 != 4)
        .map(|(_, w)| w.name.clone())
        .collect();
    if primary.is_empty() {
        primary = windows
            .iter()
            .filter(|w| !w.emergency)
            .map(|w| w.name.clone())
            .collect();
    }
    let roles = [
        Role::DomainController,
        Role::SqlServer,
        Role::File,
        Role::Web,
        Role::Application,
        Role::Rds,
        Role::HyperVHost,
        Role::Print,
    ];
    // Layer of each server: 0 infrastructure (5%), 1 data (15%), 2 application (50%), 3 front.
    let layer = |i: usize| -> u8 {
        let p = (i * 100) / n.max(1);
        match p {
            0..=4 => 0,
            5..=19 => 1,
            20..=69 => 2,
            _ => 3,
        }
    };
    let mut servers: Vec<Server> = (0..n)
        .map(|i| {
            let mut wins = vec![primary[r.below(primary.len() as u64) as usize].clone()];
            if r.chance(30) {
                wins.push(windows[r.below(windows.len() as u64) as usize].name.clone());
            }
            let ring = if rings.is_empty() {
                None
            } else {
                // pilot 5%, then spread.
                let x = r.below(100);
                let k = if x < 5 {
                    0
                } else {
                    1 + (x as usize) % rings.len().saturating_sub(1).max(1)
                };
                rings.get(k.min(rings.len() - 1)).map(|x| x.name.clone())
            };
            let role = match layer(i) {
                0 => roles[[0usize, 6][r.below(2) as usize]].clone(),
                1 => roles[[1usize, 2][r.below(2) as usize]].clone(),
                2 => roles[[4usize, 5, 7][r.below(3) as usize]].clone(),
                _ => roles[3].clone(),
            };
            Server {
                name: name(i),
                os: "Windows Server 2022 Datacenter".into(),
                roles: vec![role],
                tier: Tier(1 + r.below(4) as u8),
                site: Some(format!("site-{}", r.below(cfg.sites.max(1) as u64))),
                windows: wins,
                ring,
                backup_policy: (!backup_policies.is_empty() && r.chance(60)).then(|| {
                    backup_policies[r.below(backup_policies.len() as u64) as usize]
                        .name
                        .clone()
                }),
                estimated_duration: r
                    .chance(cfg.custom_duration_percent)
                    .then(|| SignedDuration::from_mins(30 + 15 * r.below(8) as i64)),
                ..Server::default()
            }
        })
        .collect();
    if !servers.is_empty() {
        servers.sort_by(|a, b| a.name.cmp(&b.name));
    }

    // Dependencies: a server depends only on servers of the layer just below its own, so the
    // graph is acyclic and at most 3 deep (front end → application → data → infrastructure).
    let bounds = |l: u8| -> (usize, usize) {
        let cut = |p: usize| (n * p).div_ceil(100);
        match l {
            0 => (0, cut(5)),
            1 => (cut(5), cut(20)),
            2 => (cut(20), cut(70)),
            _ => (cut(70), n),
        }
    };
    let mut dependencies = Vec::with_capacity(cfg.edges + cfg.cycles);
    if n >= 2 {
        for _ in 0..cfg.edges {
            let a = r.below(n as u64) as usize;
            let la = layer(a);
            // Core infrastructure (the first 1 %) depends on nothing; other infrastructure
            // on the core.
            let core = (n / 100).max(1);
            let (lo, hi) = match la {
                0 if a < core => (0, 0),
                0 => (0, core),
                _ => bounds(la - 1),
            };
            if hi <= lo {
                continue;
            }
            let b = lo + r.below((hi - lo) as u64) as usize;
            if a != b {
                dependencies.push(Dependency {
                    dependent: DependencyTarget::Server(name(a)),
                    depends_on: DependencyTarget::Server(name(b)),
                });
            }
        }
        for _ in 0..cfg.cycles {
            // b depends on a with a > b: if a (transitively) depends on b this closes a cycle;
            // add the forward edge too so it certainly does.
            let a = 1 + r.below(n as u64 - 1) as usize;
            let b = r.below(a as u64) as usize;
            dependencies.push(Dependency {
                dependent: DependencyTarget::Server(name(a)),
                depends_on: DependencyTarget::Server(name(b)),
            });
            dependencies.push(Dependency {
                dependent: DependencyTarget::Server(name(b)),
                depends_on: DependencyTarget::Server(name(a)),
            });
        }
    }
    // Services: groups of 2–8 consecutive servers (redundant pairs/farms sit together).
    let mut services = Vec::with_capacity(cfg.services);
    for k in 0..cfg.services {
        if n < 2 {
            break;
        }
        let size = 2 + r.below(7) as usize;
        let first = r.below(n as u64) as usize;
        let members: Vec<String> = (first..(first + size).min(n)).map(name).collect();
        let budget = match r.below(4) {
            0 => DisruptionBudget::MaxUnavailablePercent(50),
            1 => DisruptionBudget::MaxUnavailablePercent(25),
            _ => DisruptionBudget::MaxUnavailable(1),
        };
        services.push(Service {
            probes: Vec::new(),
            probe_grace: None,
            name: format!("service-{k:04}"),
            members,
            budget,
            owner: None,
        });
        if r.chance(10) && first > 0 {
            // A service-level dependency on a lower-index infrastructure server (acyclic).
            let b = r.below(first.min((n / 20).max(1)) as u64) as usize;
            dependencies.push(Dependency {
                dependent: DependencyTarget::Service(format!("service-{k:04}")),
                depends_on: DependencyTarget::Server(name(b)),
            });
        }
    }
    let day = 86_400i64;
    let blackouts: Vec<Blackout> = (0..cfg.blackouts)
        .map(|k| {
            let s = start.as_second() + day * (3 + r.below(40) as i64) + 3600 * r.below(24) as i64;
            let scope = match r.below(4) {
                0 => BlackoutScope::Global,
                1 => BlackoutScope::Site(format!("site-{}", r.below(cfg.sites.max(1) as u64))),
                2 if !services.is_empty() => BlackoutScope::Service(
                    services[r.below(services.len() as u64) as usize]
                        .name
                        .clone(),
                ),
                _ if n > 0 => BlackoutScope::Server(name(r.below(n as u64) as usize)),
                _ => BlackoutScope::Global,
            };
            Blackout {
                name: format!("blackout-{k}"),
                scope,
                start: Timestamp::from_second(s).unwrap_or(start),
                end: Timestamp::from_second(s + day * (1 + r.below(3) as i64)).unwrap_or(start),
                reason: Some("change freeze".into()),
            }
        })
        .collect();
    let coverage = cfg.coverage.then(|| Coverage {
        windows: vec![MaintenanceWindow {
            name: "on duty".into(),
            rrule: "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA".into(),
            offset_days: 0,
            start: Time::constant(6, 0, 0, 0),
            duration: SignedDuration::from_hours(20),
            time_zone: "UTC".into(),
            emergency: false,
        }],
    });
    // Unplaceable servers and self-dependencies from their own stream, so that estates
    // without them are exactly what they were.
    let mut extra = Rng::new(cfg.seed ^ 0x5EED_0F0B_57AC_1E00);
    if n > 0 {
        for _ in 0..cfg.unplaceable {
            // Mostly the lower layers (what others depend on).
            let i = extra.below(n.div_ceil(5) as u64) as usize;
            if let Some(s) = servers.get_mut(i) {
                s.windows.clear();
            }
        }
        for _ in 0..cfg.self_dependencies {
            let a = name(extra.below(n as u64) as usize);
            dependencies.push(Dependency {
                dependent: DependencyTarget::Server(a.clone()),
                depends_on: DependencyTarget::Server(a.to_lowercase()),
            });
        }
    }
    let mut due = BTreeMap::new();
    for s in &servers {
        if r.chance(cfg.due_percent) {
            let d = start.as_second() + day * (3 + r.below(60) as i64);
            if let Ok(t) = Timestamp::from_second(d) {
                due.insert(s.name.clone(), t);
            }
        }
    }
    Generated {
        estate: Estate {
            servers,
            services,
            dependencies,
            windows,
            blackouts,
            backup_policies,
            rings,
            coverage,
            capacity: cfg.capacity.clone(),
        },
        due,
        start,
    }
}
