//! A running cycle to test execution with: a server in this process (injected clock) on the
//! test's database, the June 2026 feeds, simulated agents enrolled over HTTP, an estate that
//! places them in one open nightly window, and a cycle planned, approved and started.

use crate::api::{TestDb, call, client, user_token};
use crate::workflow::{InProcess, serve_in_process_with};
use crate::{fixtures, ok, pw};
use jiff::Timestamp;
use patchward_agent::simulated::{Fault, SimulatedHost, Streams};
use patchward_agent::{Agent, AgentClient, Tls};
use patchward_core::product::ServerRelease;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::fmt::Write as _;

pub struct Lab {
    pub srv: InProcess,
    pub c: Client,
    pub op: String,
    pub appr: String,
    pub adm: String,
    pub agents: Vec<Agent<SimulatedHost>>,
    pub names: Vec<String>,
    pub cycle: i64,
    pub start: Timestamp,
}

/// What the lab's estate holds besides its servers.
pub struct Estate<'a> {
    /// TOML after the window (`[[services]]`, ...), given the servers' names.
    pub extra: &'a dyn Fn(&[String]) -> String,
    /// Lines added to server `i`'s table.
    pub server: &'a dyn Fn(usize) -> String,
}

impl Lab {
    /// `hosts` simulated Server 2019/2022 hosts (seed `seed`) with these faults, each three
    /// cumulative updates behind, in a cycle started at 2026-08-12T01:00Z.
    pub async fn start(
        db: &TestDb,
        name: &str,
        seed: u64,
        faults: &[Option<Fault>],
        estate: Estate<'_>,
    ) -> Lab {
        Lab::start_with(db, name, seed, faults, estate, Default::default()).await
    }

    /// The same, the server running these operator hooks.
    pub async fn start_with(
        db: &TestDb,
        name: &str,
        seed: u64,
        faults: &[Option<Fault>],
        estate: Estate<'_>,
        hooks: patchward_app::jobs::Hooks,
    ) -> Lab {
        let db = db.spec.clone();
        let f = |p: &str| fixtures().join(p).to_str().unwrap().to_string();
        ok(&pw(
            &db,
            &[
                "import",
                "feeds",
                &f("builds/windows-server-kb-fixedbuild_from-msrc-cvrf_2016-2026.csv.zst"),
                &f("msrc-cvrf/2026-Jun.xml.zst"),
            ],
        ));
        let op = user_token(&db, "olga", "operator", Some("default"));
        let appr = user_token(&db, "alice", "approver", Some("default"));
        let adm = user_token(&db, "adam", "admin", Some("default"));
        let start: Timestamp = "2026-08-12T01:00:00Z".parse().unwrap();
        let srv = serve_in_process_with(&db, "2026-08-12T01:00:00Z", hooks).await;
        let c = client();
        let u = |p: &str| format!("{}{p}", srv.url);
        let (_, tok) = call(
            &c,
            Method::POST,
            &u("/api/v1/enrol-tokens"),
            Some(&adm),
            Some(json!({"uses": faults.len()})),
        )
        .await;
        let streams = Streams::bundled().unwrap();
        let mut agents = Vec::new();
        let mut index = 0;
        while agents.len() < faults.len() {
            let mut h = SimulatedHost::generate(&streams, seed, index, start).unwrap();
            index += 1;
            if !matches!(
                h.release,
                ServerRelease::Server2019 | ServerRelease::Server2022
            ) {
                continue;
            }
            let old = h.stream[h.stream.len() - 3].clone();
            h.build = old.build;
            h.kbs = [old.kb].into();
            let h = h.with_fault(faults[agents.len()].clone(), start);
            let mut a =
                Agent::new(h, AgentClient::new(&srv.url, &Tls::Platform).unwrap(), None).unwrap();
            a.ensure_enrolled(Some(tok["token"].as_str().unwrap()))
                .await
                .unwrap();
            a.tick(start).await.unwrap();
            agents.push(a);
        }
        let names: Vec<String> = agents.iter().map(|a| a.host.name.clone()).collect();
        let mut toml = format!(
            "[capacity]\nmax_in_flight = 50\nmax_in_flight_per_site = 50\n\n\
             [[windows]]\nname = \"night\"\nrrule = \"FREQ=DAILY\"\nstart = \"00:00\"\nduration = \"10h\"\ntime_zone = \"UTC\"\n\n{}",
            (estate.extra)(&names)
        );
        for (i, a) in agents.iter().enumerate() {
            let _ = write!(
                toml,
                "\n[[servers]]\nname = \"{}\"\nos = \"{}\"\nwindows = [\"night\"]\nestimated_duration = \"30m\"\ntier = 3\n{}\n",
                a.host.name,
                a.host.caption(),
                (estate.server)(i),
            );
        }
        let file = crate::tmpdir(&format!("lab-{name}")).join("estate.toml");
        std::fs::write(&file, toml).unwrap();
        ok(&pw(&db, &["import", "hosts", file.to_str().unwrap()]));
        let (s, cy) = call(
            &c,
            Method::POST,
            &u("/api/v1/cycles"),
            Some(&op),
            Some(json!({})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{cy}");
        let cycle = cy["id"].as_i64().unwrap();
        for (path, who, body) in [
            ("plan", &op, None),
            ("approvals", &appr, Some(json!({"ticket": "CHG-1"}))),
            ("start", &op, None),
        ] {
            let (s, v) = call(
                &c,
                Method::POST,
                &u(&format!("/api/v1/cycles/{cycle}/{path}")),
                Some(who),
                body,
            )
            .await;
            assert_eq!(s, StatusCode::OK, "{path}: {v}");
        }
        Lab {
            srv,
            c,
            op,
            appr,
            adm,
            agents,
            names,
            cycle,
            start,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.srv.url)
    }

    /// Let every ring fail as much as it will (the tenant's failure budget at 100%): for
    /// tests whose failures are all on purpose.
    pub async fn tolerate_failures(&self) {
        let (_, mut rules) = call(
            &self.c,
            Method::GET,
            &self.url("/api/v1/workflow-rules"),
            Some(&self.adm),
            None,
        )
        .await;
        rules["failure_budget_percent"] = json!(100);
        let (s, v) = call(
            &self.c,
            Method::PUT,
            &self.url("/api/v1/workflow-rules"),
            Some(&self.adm),
            Some(rules),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    /// The cycle's jobs as the API shows them to the operator.
    pub async fn jobs(&self) -> Value {
        let (s, j) = call(
            &self.c,
            Method::GET,
            &self.url(&format!("/api/v1/cycles/{}/jobs", self.cycle)),
            Some(&self.op),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{j}");
        j
    }

    /// Server `i`'s job.
    pub fn job<'a>(&self, jobs: &'a Value, i: usize) -> &'a Value {
        jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["server"] == self.names[i].as_str())
            .unwrap()
    }
}
