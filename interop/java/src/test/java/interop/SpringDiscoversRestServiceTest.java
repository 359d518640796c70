package interop;

import static org.junit.jupiter.api.Assertions.assertEquals;

import interop.zkapp.ZkClientApp;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.springframework.cloud.client.ServiceInstance;
import org.springframework.cloud.client.discovery.DiscoveryClient;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.web.client.RestClient;

/**
 * (D3, issue 16) A service registered through config-service's REST API is an ordinary Spring
 * Cloud Zookeeper service to a Spring Boot app: once REST discover lists it healthy,
 * {@code DiscoveryClient.getInstances(name)} (spring-cloud-starter-zookeeper-discovery, no
 * registration of its own) answers it with host 127.0.0.1 and its port, and a
 * {@code @LoadBalanced RestClient.Builder}'s client calls it as {@code http://<name>/hello}.
 * Needs the service on an external ZooKeeper (skipped otherwise).
 */
class SpringDiscoversRestServiceTest {

  @Test
  void aSpringAppDiscoversAndCallsARestRegisteredService() throws Exception {
    Zk.assumeZookeeper();
    String service = Zk.uniqueName("interop-rest");
    String id = null;
    try (StubService stub = new StubService(true)) {
      id = Zk.register(service, stub.url(), stub.url() + "/health");
      String want = id;
      long ms = Zk.await("REST discover lists " + id + " healthy", 30_000, 100,
          () -> Zk.ids(Zk.discovered(service)).equals(List.of(want)), () -> Zk.listed(service));
      System.out.println("[interop] REST registration → discover lists it healthy: " + ms + " ms");

      try (ConfigurableApplicationContext ctx = ZkClientApp.start(Zk.hosts(), Zk.basePath())) {
        DiscoveryClient dc = ctx.getBean(DiscoveryClient.class);
        List<ServiceInstance> instances = dc.getInstances(service);
        assertEquals(1, instances.size(), "DiscoveryClient.getInstances(" + service + "): " + instances);
        ServiceInstance i = instances.get(0);
        assertEquals(id, i.getInstanceId());
        assertEquals(service, i.getServiceId());
        assertEquals("127.0.0.1", i.getHost());
        assertEquals(stub.port(), i.getPort());
        assertEquals("http://127.0.0.1:" + stub.port(), i.getUri().toString());

        RestClient client = ctx.getBean("loadBalancedRestClientBuilder", RestClient.Builder.class).build();
        AtomicReference<Object> last = new AtomicReference<>();
        // The znode is "UP" since discover lists it healthy: the first call should do; a short
        // grace only in case the znode write trails the REST view.
        long callMs = Zk.await("GET http://" + service + "/hello through the LoadBalancer", 5_000, 100, () -> {
          try {
            String body = client.get().uri("http://" + service + "/hello").retrieve().body(String.class);
            last.set(body);
            return ("hello from " + stub.port()).equals(body);
          } catch (RuntimeException e) {
            last.set(e.toString());
            return false;
          }
        }, last::get);
        assertEquals("hello from " + stub.port(), last.get());
        System.out.println("[interop] @LoadBalanced RestClient → " + last.get() + " (" + callMs + " ms)");
      }
    } finally {
      Zk.deregisterQuietly(service, id);
    }
  }
}
