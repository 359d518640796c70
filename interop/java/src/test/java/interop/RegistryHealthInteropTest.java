package interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import interop.zkapp.ZkClientApp;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.ServiceProvider;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.springframework.cloud.client.discovery.DiscoveryClient;
import org.springframework.cloud.client.loadbalancer.LoadBalancerClient;
import org.springframework.cloud.zookeeper.discovery.ZookeeperInstance;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * (D1, issue 16) The health config-service's leader probes reaches JVM clients that read its
 * ZooKeeper znodes directly. Two instances of one service are registered through REST, one
 * answering /health 200, the other 503. Apache Curator's x-discovery {@link ServiceProvider}
 * (its default round robin and its built-in {@code enabled} filter, nothing custom) and Spring
 * Cloud LoadBalancer over spring-cloud-starter-zookeeper-discovery (its instance_status "UP"
 * filter, no cache) never pick the unhealthy one in 50 picks each, although both clients see it
 * in ZooKeeper; once its /health answers 200 again both pick it within one health-check
 * interval + 2 s. Needs the service on an external ZooKeeper (skipped otherwise).
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class RegistryHealthInteropTest {
  static final int PICKS = 50;

  static String service;
  static StubService good;
  static StubService bad;
  static String goodId;
  static String badId;
  static CuratorFramework curator;
  static ServiceDiscovery<ZookeeperInstance> discovery;
  static ServiceProvider<ZookeeperInstance> provider;
  static ConfigurableApplicationContext spring;

  @BeforeAll
  static void setUp() throws Exception {
    if (Zk.hosts().isEmpty()) return; // each test skips (@BeforeEach), and counts as skipped
    service = Zk.uniqueName("interop-health");
    good = new StubService(true);
    bad = new StubService(false);
    goodId = Zk.register(service, good.url(), good.url() + "/health");
    badId = Zk.register(service, bad.url(), bad.url() + "/health");
    assertNotEquals(goodId, badId);

    // REST first: the leader has probed both
    long ms = Zk.await("REST: " + goodId + " healthy and " + badId + " unhealthy", 30_000, 100, () -> {
      List<JsonNode> l = Zk.listed(service);
      JsonNode g = Zk.byId(l, goodId);
      JsonNode b = Zk.byId(l, badId);
      return g != null && b != null && "healthy".equals(g.path("status").asText())
          && "unhealthy".equals(b.path("status").asText())
          && Zk.ids(Zk.discovered(service)).equals(List.of(goodId));
    }, () -> Zk.listed(service));
    System.out.println("[interop] registration → REST shows one healthy, one unhealthy: " + ms + " ms");

    Zk.quietClientLogs();
    curator = CuratorFrameworkFactory.newClient(Zk.hosts(), 15_000, 10_000, new ExponentialBackoffRetry(200, 5));
    curator.start();
    assertTrue(curator.blockUntilConnected(15, TimeUnit.SECONDS), "Curator could not connect to " + Zk.hosts());
    discovery = ServiceDiscoveryBuilder.builder(ZookeeperInstance.class)
        .client(curator)
        .basePath(Zk.basePath())
        .serializer(new JsonInstanceSerializer<>(ZookeeperInstance.class))
        .build();
    discovery.start();
    provider = discovery.serviceProviderBuilder().serviceName(service).build(); // round robin, enabled filter
    provider.start();

    spring = ZkClientApp.start(Zk.hosts(), Zk.basePath());
  }

  @BeforeEach
  void needsZookeeper() {
    Zk.assumeZookeeper();
  }

  @AfterAll
  static void tearDown() throws Exception {
    try {
      if (provider != null) provider.close();
      if (discovery != null) discovery.close();
      if (curator != null) curator.close();
      if (spring != null) spring.close();
    } finally {
      if (service != null) {
        Zk.deregisterQuietly(service, goodId);
        Zk.deregisterQuietly(service, badId);
      }
      if (good != null) good.close();
      if (bad != null) bad.close();
    }
  }

  static String describe(Collection<ServiceInstance<ZookeeperInstance>> instances) {
    List<String> out = new ArrayList<>();
    for (ServiceInstance<ZookeeperInstance> i : instances) {
      out.add(i.getId() + " " + i.getAddress() + ":" + i.getPort() + " enabled=" + i.isEnabled()
          + " instance_status=" + (i.getPayload() == null ? null : i.getPayload().getMetadata().get("instance_status")));
    }
    return out.toString();
  }

  @Test
  @Order(1)
  void curatorServiceProviderNeverPicksTheUnhealthyInstance() throws Exception {
    // Both znodes are there (the provider's filter, not a missing znode, keeps the bad one out),
    // the unhealthy one with enabled=false.
    Zk.await("ZooKeeper: both znodes, " + badId + " with enabled=false", 5_000, 50, () -> {
      try {
        Collection<ServiceInstance<ZookeeperInstance>> all = discovery.queryForInstances(service);
        ServiceInstance<ZookeeperInstance> b = all.stream().filter(i -> i.getId().equals(badId)).findFirst().orElse(null);
        ServiceInstance<ZookeeperInstance> g = all.stream().filter(i -> i.getId().equals(goodId)).findFirst().orElse(null);
        return all.size() == 2 && b != null && !b.isEnabled() && g != null && g.isEnabled();
      } catch (Exception e) {
        throw new RuntimeException(e);
      }
    }, () -> {
      try {
        return describe(discovery.queryForInstances(service));
      } catch (Exception e) {
        return e.toString();
      }
    });
    ServiceInstance<ZookeeperInstance> b = discovery.queryForInstance(service, badId);
    assertEquals("127.0.0.1", b.getAddress());
    assertEquals(bad.port(), b.getPort());
    assertEquals("OUT_OF_SERVICE", b.getPayload().getMetadata().get("instance_status"));

    for (int n = 0; n < PICKS; n++) {
      ServiceInstance<ZookeeperInstance> i = provider.getInstance();
      assertNotNull(i, "pick " + n + ": Curator's provider picked nothing; all: " + describe(discovery.queryForInstances(service)));
      assertEquals(goodId, i.getId(), "pick " + n + ": Curator picked the unhealthy instance");
      assertEquals(good.port(), i.getPort());
      assertEquals("http://127.0.0.1:" + good.port(), i.buildUriSpec());
    }
  }

  @Test
  @Order(2)
  void springCloudLoadBalancerNeverPicksTheUnhealthyInstance() {
    DiscoveryClient dc = spring.getBean(DiscoveryClient.class);
    // Spring's DiscoveryClient lists both; the LoadBalancer's ZooKeeper supplier filters.
    List<String> seen = dc.getInstances(service).stream().map(i -> i.getInstanceId()).sorted().toList();
    assertEquals(List.of(goodId, badId).stream().sorted().toList(), seen, "DiscoveryClient.getInstances");
    LoadBalancerClient lb = spring.getBean(LoadBalancerClient.class);
    for (int n = 0; n < PICKS; n++) {
      org.springframework.cloud.client.ServiceInstance i = lb.choose(service);
      assertNotNull(i, "pick " + n + ": the LoadBalancer chose nothing");
      assertEquals(goodId, i.getInstanceId(), "pick " + n + ": the LoadBalancer chose the unhealthy instance");
      assertEquals("127.0.0.1", i.getHost());
      assertEquals(good.port(), i.getPort());
    }
  }

  @Test
  @Order(3)
  void bothPickTheInstanceSoonAfterItRecovers() throws Exception {
    double interval = Zk.healthIntervalSeconds();
    long limit = Math.round(interval * 1000) + 2000;
    LoadBalancerClient lb = spring.getBean(LoadBalancerClient.class);
    assertFalse(Zk.ids(Zk.discovered(service)).contains(badId), "still unhealthy before the switch");

    bad.healthy(true);
    long start = System.nanoTime();
    long curatorMs = -1;
    long springMs = -1;
    while ((curatorMs < 0 || springMs < 0) && (System.nanoTime() - start) / 1_000_000 < limit + 15_000) {
      // two picks each: round robin over two instances returns both in two picks
      for (int k = 0; k < 2; k++) {
        if (curatorMs < 0) {
          ServiceInstance<ZookeeperInstance> i = provider.getInstance();
          if (i != null && badId.equals(i.getId())) curatorMs = (System.nanoTime() - start) / 1_000_000;
        }
        if (springMs < 0) {
          org.springframework.cloud.client.ServiceInstance i = lb.choose(service);
          if (i != null && badId.equals(i.getInstanceId())) springMs = (System.nanoTime() - start) / 1_000_000;
        }
      }
      Thread.sleep(20);
    }
    String state = "REST: " + Zk.listed(service) + "; ZooKeeper: " + describe(discovery.queryForInstances(service));
    assertTrue(curatorMs >= 0, "Curator never picked " + badId + " after its /health answered 200; " + state);
    assertTrue(springMs >= 0, "the LoadBalancer never chose " + badId + " after its /health answered 200; " + state);
    Zk.assertWithin("flip to healthy → picked by Curator's ServiceProvider", curatorMs, limit);
    Zk.assertWithin("flip to healthy → chosen by Spring Cloud LoadBalancer", springMs, limit);
  }
}
