use stockmesh_testkit::demo::walk_the_spec_demo;
use stockmesh_testkit::{BrokerKind, TestCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_demo_passes_over_redis() {
    let cluster = TestCluster::start(2).await;
    walk_the_spec_demo(&cluster.central, cluster.store(1)).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_demo_passes_over_the_in_process_broker() {
    let cluster = TestCluster::start_with(BrokerKind::InProcess, 2).await;
    walk_the_spec_demo(&cluster.central, cluster.store(1)).await;
    cluster.shutdown().await;
}
