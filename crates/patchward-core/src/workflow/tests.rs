#![allow(clippy::unwrap_used)]

use super::*;
use jiff::civil::date;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn cycle(prepared_by: &str) -> Cycle {
    let scope = vec![
        ScopeItem {
            server: "DC01".into(),
            updates: vec!["KB1".into()],
            cves: vec![],
        },
        ScopeItem {
            server: "SQL01".into(),
            updates: vec!["KB2".into()],
            cves: vec![],
        },
    ];
    let fps = ring_fingerprints(
        &scope,
        [
            (
                "DC01",
                Some("pilot"),
                Some((1, ts("2026-12-10T02:00:00Z"), ts("2026-12-10T03:00:00Z"))),
            ),
            (
                "SQL01",
                Some("broad"),
                Some((2, ts("2026-12-11T02:00:00Z"), ts("2026-12-11T03:00:00Z"))),
            ),
        ]
        .into_iter(),
    );
    Cycle {
        kind: CycleKind::Monthly,
        name: "2026-12 Patch Tuesday".into(),
        state: CycleState::Planned,
        prepared_by: vec![prepared_by.into()],
        created_at: ts("2026-12-09T00:00:00Z"),
        start: ts("2026-12-09T00:00:00Z"),
        deadline: None,
        filter: ScopeFilter::default(),
        scope,
        fingerprints: fps,
        approvals: vec![],
        deferrals: vec![],
        history: vec![],
        snapshot: None,
        placed: None,
        unplaced: None,
        paused: None,
        accepted_failures: Default::default(),
    }
}

fn approve(c: &mut Cycle, who: &str, ring: Option<&str>) {
    let fingerprint = c.fingerprint_of(ring);
    c.approvals.push(Approval {
        id: c.approvals.len() as u32 + 1,
        ring: ring.map(str::to_string),
        by: who.into(),
        ticket: "CHG-1".into(),
        comment: String::new(),
        at: ts("2026-12-09T10:00:00Z"),
        fingerprint,
        withdrawn: None,
    });
}

#[test]
fn patch_tuesday_is_the_second_tuesday() {
    assert_eq!(patch_tuesday(2026, 12), Some(date(2026, 12, 8)));
    assert_eq!(patch_tuesday(2024, 8), Some(date(2024, 8, 13)));
    assert_eq!(patch_tuesday(2025, 7), Some(date(2025, 7, 8)));
    assert_eq!(
        monthly_cycle_for(date(2026, 12, 4)),
        Some(("2026-11 Patch Tuesday".into(), date(2026, 11, 10)))
    );
    assert_eq!(
        monthly_cycle_for(date(2026, 12, 8)),
        Some(("2026-12 Patch Tuesday".into(), date(2026, 12, 8)))
    );
    assert_eq!(
        next_monthly_cycle(date(2026, 12, 8)),
        Some(("2027-01 Patch Tuesday".into(), date(2027, 1, 12)))
    );
}

#[test]
fn states_move_only_forward_and_close() {
    use CycleState::*;
    assert!(Draft.can_become(Planned));
    assert!(Approved.can_become(Planned));
    assert!(!Draft.can_become(Approved));
    assert!(!Planned.can_become(Running));
    assert!(Approved.can_become(Running));
    assert!(Running.can_become(Completed));
    assert!(Running.can_become(Cancelled));
    assert!(!Completed.can_become(Cancelled));
    assert!(!Cancelled.can_become(Planned));
    for s in CycleState::ALL {
        assert_eq!(CycleState::parse(s.as_str()), Some(s));
    }
}

#[test]
fn preparer_cannot_be_the_only_approver() {
    let rules = WorkflowRules::default();
    let mut c = cycle("olga");
    let why = c.refuse_approval("olga", true, None, &rules).unwrap().why;
    assert!(why.contains("separation of duties"), "{why}");
    // Case does not dodge the rule.
    assert!(c.refuse_approval("OLGA", true, None, &rules).is_some());
    assert!(c.refuse_approval("alice", true, None, &rules).is_none());
    assert!(c.refuse_approval("alice", false, None, &rules).is_some());
    approve(&mut c, "alice", None);
    assert!(c.fully_approved(&rules));
    assert_eq!(
        c.refuse_approval("alice", true, None, &rules)
            .map(|r| r.kind),
        Some(RefusalKind::AlreadyApproved)
    );
    // Once someone else approved, the preparer may add theirs.
    assert!(c.refuse_approval("olga", true, None, &rules).is_none());
    // Without separation of duties the preparer alone is enough.
    let lax = WorkflowRules {
        separation_of_duties: false,
        ..rules
    };
    let mut c = cycle("olga");
    assert!(c.refuse_approval("olga", true, None, &lax).is_none());
    approve(&mut c, "olga", None);
    assert!(c.fully_approved(&lax));
    assert!(!c.fully_approved(&rules));
}

#[test]
fn rings_need_their_own_approvals_and_counts() {
    let rules = WorkflowRules {
        approvals_required: 2,
        ..WorkflowRules::default()
    };
    let mut c = cycle("olga");
    approve(&mut c, "alice", Some("pilot"));
    let ra = c.ring_approvals(&rules);
    assert_eq!(ra.len(), 2);
    assert!(!ra[0].approved && !ra[1].approved);
    assert_eq!(ra[1].missing.as_deref(), Some("has 1 of 2 approval(s)"));
    approve(&mut c, "olga", Some("pilot"));
    let ra = c.ring_approvals(&rules);
    let pilot = ra.iter().find(|r| r.ring == "pilot").unwrap();
    assert!(pilot.approved, "{pilot:?}");
    assert!(!c.fully_approved(&rules));
    assert!(
        c.refuse_approval("bob", true, Some("canary"), &rules)
            .unwrap()
            .why
            .contains("not in the plan")
    );
}

#[test]
fn a_changed_ring_withdraws_its_approvals_with_the_change_named() {
    let rules = WorkflowRules::default();
    let mut c = cycle("olga");
    approve(&mut c, "alice", Some("pilot"));
    approve(&mut c, "alice", Some("broad"));
    c.state = CycleState::Approved;
    assert!(c.fully_approved(&rules));
    // Same plan again: nothing withdrawn.
    let same = c.fingerprints.clone();
    assert!(
        c.replace_fingerprints(same, ts("2026-12-09T11:00:00Z"), &rules)
            .is_empty()
    );
    assert_eq!(c.state, CycleState::Approved);
    // SQL02 joins the broad ring.
    c.scope.push(ScopeItem {
        server: "SQL02".into(),
        updates: vec!["KB2".into()],
        cves: vec![],
    });
    let new = ring_fingerprints(
        &c.scope,
        [
            (
                "DC01",
                Some("pilot"),
                Some((1, ts("2026-12-10T02:00:00Z"), ts("2026-12-10T03:00:00Z"))),
            ),
            (
                "SQL01",
                Some("broad"),
                Some((2, ts("2026-12-11T02:00:00Z"), ts("2026-12-11T03:00:00Z"))),
            ),
            ("SQL02", Some("broad"), None),
        ]
        .into_iter(),
    );
    let gone = c.replace_fingerprints(new, ts("2026-12-09T12:00:00Z"), &rules);
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert!(
        gone[0].contains("ring broad changed") && gone[0].contains("added sql02"),
        "{gone:?}"
    );
    assert_eq!(c.state, CycleState::Planned);
    let pilot = c
        .approvals
        .iter()
        .find(|a| a.ring.as_deref() == Some("pilot"))
        .unwrap();
    assert!(pilot.withdrawn.is_none());
}

#[test]
fn whole_plan_approval_is_withdrawn_by_any_ring_change() {
    let rules = WorkflowRules::default();
    let mut c = cycle("olga");
    approve(&mut c, "alice", None);
    c.state = CycleState::Approved;
    let moved = ring_fingerprints(
        &c.scope,
        [
            (
                "DC01",
                Some("pilot"),
                Some((1, ts("2026-12-10T04:00:00Z"), ts("2026-12-10T05:00:00Z"))),
            ),
            (
                "SQL01",
                Some("broad"),
                Some((2, ts("2026-12-11T02:00:00Z"), ts("2026-12-11T03:00:00Z"))),
            ),
        ]
        .into_iter(),
    );
    let gone = c.replace_fingerprints(moved, ts("2026-12-09T12:00:00Z"), &rules);
    assert_eq!(gone.len(), 1);
    assert!(gone[0].contains("1 slot(s) moved"), "{gone:?}");
    assert!(!c.fully_approved(&rules));
}

#[test]
fn exceptions_expire_at_the_end_of_their_day_and_are_capped() {
    let e = Exception {
        server: "WEB01".into(),
        subject: ExceptionSubject::Update("KB5044281".into()),
        reason: "vendor".into(),
        compensating_control: "WAF".into(),
        risk_owner: "CISO".into(),
        approver: "alice".into(),
        granted_at: ts("2026-12-01T00:00:00Z"),
        expires: date(2026, 12, 20),
        revoked: None,
    };
    assert_eq!(e.status(date(2026, 12, 1)), ExceptionStatus::Active);
    assert_eq!(e.status(date(2026, 12, 6)), ExceptionStatus::Expiring);
    assert!(e.is_active(date(2026, 12, 20)));
    assert_eq!(e.status(date(2026, 12, 21)), ExceptionStatus::Expired);
    assert!(e.covers("CVE-1", &["KB5044281".into()]));
    assert!(!e.covers("CVE-1", &["KB1".into()]));
    assert!(refuse_expiry(date(2026, 12, 1), date(2026, 12, 1), 180).is_some());
    assert!(refuse_expiry(date(2026, 12, 1), date(2027, 5, 30), 180).is_none());
    let why = refuse_expiry(date(2026, 12, 1), date(2027, 6, 1), 180).unwrap();
    assert!(why.contains("at most 180 days"), "{why}");
}

#[test]
fn deferral_past_due_says_so() {
    let d = Deferral {
        server: "SQL01".into(),
        update: Some("KB2".into()),
        reason: "quarter end".into(),
        to_cycle: "2027-01 Patch Tuesday".into(),
        to_start: date(2027, 1, 12),
        by: "olga".into(),
        at: ts("2026-12-09T00:00:00Z"),
        due: Some(date(2026, 12, 23)),
    };
    assert!(d.past_due());
    let note = d.due_note().unwrap();
    assert!(
        note.contains("2026-12-23 (Wednesday)") && note.contains("overdue"),
        "{note}"
    );
    let fine = Deferral {
        due: Some(date(2027, 2, 1)),
        ..d
    };
    assert!(!fine.past_due() && fine.due_note().is_none());
}
