//! Several hub nodes on one PostgreSQL database, as separate processes: phones spread over
//! them, load through all of them, the leader killed with SIGKILL at random points and
//! restarted as a follower, phones reconnecting to other nodes. As in the single-node crash
//! test: every message that got a 2xx reaches a final state, none is missing or extra, none
//! is committed to two phones or sent twice.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use smshub::simulate::{self, Behaviour, Control, SimStats};
use smshub::store::cluster::LeaderLock;

use crate::crash::{assert_no_double_sends, check_all_delivered, submit_all, wait_ready};
use crate::support::{cli_api_key, free_port};

struct Node {
    port: u16,
    child: Child,
}

impl Node {
    fn start(port: u16, db: &str) -> Node {
        let child = Command::new(env!("CARGO_BIN_EXE_smshub"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args([
                "--database-url",
                db,
                "--log",
                "warn",
                "--offer-lease-s",
                "5",
            ])
            // The default --max-attempts (3): a failover gives back the attempts of the offers
            // the old leader lost, so three leader deaths cost no message its attempts.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts");
        Node { port, child }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no shutdown, no flush, the lock's session cut.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which node leads now, as PostgreSQL says (waits for one to have announced itself).
async fn leader_port(lock: &mut LeaderLock) -> u16 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(address) = lock.leader().await.unwrap().and_then(|it| it.address) {
            return address.rsplit(':').next().unwrap().parse().unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no leader announced"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_lose_nothing_and_send_nothing_twice_when_leaders_are_killed() {
    const MESSAGES: usize = 2000;
    const KILLS: usize = 3;
    let Some(db) = crate::pg::fresh_database() else {
        return;
    };
    // The three start together on an empty database: migrations run once, under their lock.
    let mut nodes: Vec<Node> = (0..3).map(|_| Node::start(free_port(), &db)).collect();
    let bases: Vec<String> = nodes.iter().map(Node::base).collect();
    for base in &bases {
        wait_ready(base).await;
    }
    let api_key = cli_api_key(&db, "cluster");
    let mut lock = LeaderLock::connect(&db).await.unwrap();

    // Six phones, two starting on each node; each goes on to the next node when its
    // connection drops.
    let stats = Arc::new(SimStats::default());
    let behaviour = Behaviour {
        latency: Duration::from_millis(20),
        fail_rate: 0.0,
        delivery_rate: 1.0,
    };
    let credentials = simulate::register_devices(&bases[1], &api_key, "cluster", 6)
        .await
        .unwrap();
    let mut phones = Vec::new();
    for (n, pair) in credentials.chunks(2).enumerate() {
        let order: Vec<&str> = (0..3).map(|k| bases[(n + k) % 3].as_str()).collect();
        phones.extend(simulate::start_phones(
            &order.join(","),
            pair.to_vec(),
            behaviour.clone(),
            stats.clone(),
        ));
    }

    let submitter = tokio::spawn(submit_all(bases.join(","), api_key.clone(), MESSAGES));
    let seed: u64 = rand::rng().random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut leaders = Vec::new();
    let mut failovers = Vec::new();
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..1500))).await;
        let port = leader_port(&mut lock).await;
        leaders.push(port);
        let at = nodes.iter().position(|it| it.port == port).unwrap();
        nodes.remove(at).kill();
        // A follower takes over; only then does the killed node come back, as a follower.
        let killed = tokio::time::Instant::now();
        let deadline = killed + Duration::from_secs(30);
        while leader_port(&mut lock).await == port {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no follower took over"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        failovers.push(killed.elapsed().as_millis());
        nodes.push(Node::start(port, &db));
    }
    let accepted = submitter.await.unwrap();
    let port = leader_port(&mut lock).await;
    check_all_delivered(&format!("http://127.0.0.1:{port}"), &api_key, &accepted).await;
    // Through a follower too: any node answers for the cluster.
    let follower = bases.iter().find(|it| !it.ends_with(&format!(":{port}")));
    wait_ready(follower.unwrap()).await;
    assert_no_double_sends(&stats, accepted.len());
    eprintln!(
        "cluster test (seed {seed}): {} messages through 3 nodes, leaders killed on ports \
         {leaders:?}, a follower leading after {failovers:?} ms, {} phone connections, lost 0, sent twice 0",
        accepted.len(),
        SimStats::get(&stats.connects),
    );
    for phone in &phones {
        phone.control(Control::Stop).await;
    }
}

/// A message submitted on a follower reaches a phone connected through another follower, and
/// its states are read back through the third node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_through_one_node_reaches_a_phone_on_another() {
    let Some(db) = crate::pg::fresh_database() else {
        return;
    };
    let nodes: Vec<Node> = (0..3).map(|_| Node::start(free_port(), &db)).collect();
    for node in &nodes {
        wait_ready(&node.base()).await;
    }
    let mut lock = LeaderLock::connect(&db).await.unwrap();
    let leader = leader_port(&mut lock).await;
    let followers: Vec<String> = nodes
        .iter()
        .filter(|it| it.port != leader)
        .map(Node::base)
        .collect();
    let api_key = cli_api_key(&db, "cluster");
    let stats = Arc::new(SimStats::default());
    let phones = simulate::start_fleet(
        &followers[0],
        &api_key,
        "far",
        1,
        Behaviour {
            latency: Duration::from_millis(1),
            fail_rate: 0.0,
            delivery_rate: 1.0,
        },
        stats.clone(),
    )
    .await
    .unwrap();
    let accepted = submit_all(followers[1].clone(), api_key.clone(), 5).await;
    check_all_delivered(
        &nodes.iter().find(|it| it.port == leader).unwrap().base(),
        &api_key,
        &accepted,
    )
    .await;
    assert_no_double_sends(&stats, 5);
    phones[0].control(Control::Stop).await;
}

/// A leader whose lock session ends (as when PostgreSQL gives up on a node cut off from it)
/// stops itself with its own exit code, and the follower leads; messages sent across the
/// change all arrive, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_its_lock_stops_and_a_follower_leads() {
    let Some(db) = crate::pg::fresh_database() else {
        return;
    };
    let mut nodes: Vec<Node> = (0..2).map(|_| Node::start(free_port(), &db)).collect();
    for node in &nodes {
        wait_ready(&node.base()).await;
    }
    let mut lock = LeaderLock::connect(&db).await.unwrap();
    let leader = leader_port(&mut lock).await;
    let bases: Vec<String> = nodes.iter().map(Node::base).collect();
    let api_key = cli_api_key(&db, "cluster");
    let stats = Arc::new(SimStats::default());
    let credentials = simulate::register_devices(&bases[0], &api_key, "cut", 2)
        .await
        .unwrap();
    let phones = simulate::start_phones(
        &bases.join(","),
        credentials,
        Behaviour {
            latency: Duration::from_millis(10),
            fail_rate: 0.0,
            delivery_rate: 1.0,
        },
        stats.clone(),
    );
    let submitter = tokio::spawn(submit_all(bases.join(","), api_key.clone(), 400));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ended = crate::pg::psql(
        &db,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name LIKE 'smshub-leader %' AND datname = current_database()",
    );
    assert_eq!(ended, "1", "the leader's lock session");
    let at = nodes.iter().position(|it| it.port == leader).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = nodes[at].child.try_wait().unwrap() {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old leader still runs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(smshub::cluster::LOST_LOCK_EXIT));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while leader_port(&mut lock).await == leader {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no follower took over"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nodes[at] = Node::start(leader, &db);
    let accepted = submitter.await.unwrap();
    check_all_delivered(&bases[0], &api_key, &accepted).await;
    assert_no_double_sends(&stats, accepted.len());
    for phone in &phones {
        phone.control(Control::Stop).await;
    }
}
