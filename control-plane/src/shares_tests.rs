//! The division of fleet budgets among data planes, with paused time: who
//! counts, what each gets, and where a silent data plane's share goes.

use std::time::Duration;

use hangar_proto::v1::{HealthReport, Hello, LimitUsage};
use tokio::time::Instant;

use super::*;

const EXPIRY: Duration = Duration::from_secs(10);

fn config() -> Config {
    let text = "rate_limit: {rps: 100, burst: 40}\nmcp_servers:\n  a: {mode: remote, endpoint: http://a, rate_limit: {rps: 5, scope: data_plane}}\n  g: {mode: group, members: [{id: a}], rate_limit: {per_caller: {rps: 1}, tools: {t: {rps: 30}}}}\n";
    hangar_config::load("config.yaml", text).expect("valid")
}

fn join(fleet: &Fleet, node: &str) -> crate::fleet::Connection {
    let hello = Hello {
        node_id: node.to_owned(),
        instance: node.to_owned(),
        ..Hello::default()
    };
    fleet.connect(&hello, None).expect("a free node id")
}

fn report(fleet: &Fleet, conn: &crate::fleet::Connection, demand: &[(&str, f64)]) {
    let limits = demand
        .iter()
        .map(|(limit, rps)| LimitUsage {
            limit: (*limit).to_owned(),
            offered_rps: *rps,
            ..LimitUsage::default()
        })
        .collect();
    fleet.report(
        conn,
        HealthReport {
            limits,
            ..HealthReport::default()
        },
    );
}

fn shares_of(table: &ShareTable, node: &str) -> Vec<(String, f64)> {
    table
        .message_for(node)
        .map(|m| {
            m.shares
                .into_iter()
                .map(|s| (s.limit, (s.rps * 100.0).round() / 100.0))
                .collect()
        })
        .unwrap_or_default()
}

/// The share of `node` of the top-level limit.
fn all_of(table: &ShareTable, node: &str) -> f64 {
    let shares = shares_of(table, node);
    shares.iter().find(|(l, _)| l == "all").expect("a share").1
}

#[tokio::test(start_paused = true)]
async fn fleet_limits_are_divided_by_demand_and_data_plane_ones_are_not() {
    let fleet = Fleet::new(EXPIRY);
    let (a, b) = (join(&fleet, "a"), join(&fleet, "b"));
    report(&fleet, &a, &[("all", 300.0), ("group/g/tool/t", 10.0)]);
    report(&fleet, &b, &[("all", 100.0), ("group/g/tool/t", 10.0)]);
    let table = divide_fleet(&config(), 3, &fleet.planes(), Instant::now(), EXPIRY);
    // 5 % evenly, the rest 3:1; the tool's 30 evenly; the data-plane limit
    // of server a and the per-caller one of g are nobody's to divide.
    assert_eq!(
        shares_of(&table, "a"),
        [
            ("all".to_owned(), 73.75),
            ("group/g/tool/t".to_owned(), 15.0)
        ]
    );
    assert_eq!(
        shares_of(&table, "b"),
        [
            ("all".to_owned(), 26.25),
            ("group/g/tool/t".to_owned(), 15.0)
        ]
    );
    let message = table.message_for("a").unwrap();
    assert_eq!((message.version, message.data_planes), (3, 2));
}

#[tokio::test(start_paused = true)]
async fn a_share_follows_demand_as_it_moves() {
    let fleet = Fleet::new(EXPIRY);
    let (a, b) = (join(&fleet, "a"), join(&fleet, "b"));
    report(&fleet, &a, &[("all", 90.0)]);
    report(&fleet, &b, &[("all", 10.0)]);
    let before = divide_fleet(&config(), 1, &fleet.planes(), Instant::now(), EXPIRY);
    report(&fleet, &a, &[("all", 10.0)]);
    report(&fleet, &b, &[("all", 90.0)]);
    let after = divide_fleet(&config(), 1, &fleet.planes(), Instant::now(), EXPIRY);
    assert_eq!(all_of(&before, "a"), 88.0);
    assert_eq!(all_of(&after, "a"), 12.0);
    assert_eq!(all_of(&after, "b"), 88.0);
}

#[tokio::test(start_paused = true)]
async fn a_silent_data_planes_share_goes_back_after_the_expiry() {
    let fleet = Fleet::new(EXPIRY);
    let (a, b) = (join(&fleet, "a"), join(&fleet, "b"));
    report(&fleet, &a, &[("all", 50.0)]);
    report(&fleet, &b, &[("all", 50.0)]);
    let both = divide_fleet(&config(), 1, &fleet.planes(), Instant::now(), EXPIRY);
    assert_eq!(all_of(&both, "a"), 50.0);
    // b goes silent; a keeps reporting.
    tokio::time::advance(EXPIRY / 2).await;
    report(&fleet, &a, &[("all", 50.0)]);
    tokio::time::advance(EXPIRY / 2 + Duration::from_millis(1)).await;
    let one = divide_fleet(&config(), 1, &fleet.planes(), Instant::now(), EXPIRY);
    assert_eq!(all_of(&one, "a"), 100.0);
    assert_eq!(one.message_for("a").unwrap().data_planes, 1);
}

#[tokio::test(start_paused = true)]
async fn a_new_data_plane_counts_as_the_mean_until_it_reports() {
    let fleet = Fleet::new(EXPIRY);
    let a = join(&fleet, "a");
    report(&fleet, &a, &[("all", 80.0)]);
    join(&fleet, "b");
    let table = divide_fleet(&config(), 1, &fleet.planes(), Instant::now(), EXPIRY);
    assert_eq!(all_of(&table, "a"), 50.0);
    assert_eq!(all_of(&table, "b"), 50.0);
}

#[tokio::test(start_paused = true)]
async fn a_config_without_fleet_limits_sends_nothing() {
    let fleet = Fleet::new(EXPIRY);
    join(&fleet, "a");
    let text = "mcp_servers:\n  a: {mode: remote, endpoint: http://a}\n";
    let config = hangar_config::load("config.yaml", text).unwrap();
    let table = divide_fleet(&config, 1, &fleet.planes(), Instant::now(), EXPIRY);
    assert_eq!(table.message_for("a"), None);
}
