package interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import interop.zkapp.ZkWebApp;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * (D2, issue 16) config-service sees what others register in ZooKeeper under its base path. A
 * Spring Boot web app registering itself with spring-cloud-starter-zookeeper-discovery is listed
 * by {@code GET /api/v1/registry/services} within 2 s, with source "zookeeper" and its
 * 127.0.0.1:port in service_url; once its /actuator/health answers UP, config-service's own
 * probe makes it healthy and {@code discover/{name}} and {@code services/{name}/url} answer it
 * within one health-check interval + 2 s; deregistering it through REST is refused with 409
 * (problem+json: config-service does not own that znode); closing the app removes it from the
 * list within the app's ZooKeeper session timeout + 2 s. Needs the service on an external
 * ZooKeeper (skipped otherwise).
 */
class SpringZookeeperRegistrationTest {
  /** The app's ZooKeeper session timeout (Spring deregisters on close anyway, so usually far less). */
  static final long SESSION_TIMEOUT_MS = 10_000;

  static JsonNode listedOn(String service, int port) {
    for (JsonNode i : Zk.listed(service)) {
      if (i.path("service_url").asText().contains("127.0.0.1:" + port)) return i;
    }
    return null;
  }

  @Test
  void aSpringCloudZookeeperAppIsListedDiscoveredAndRemoved() {
    Zk.assumeZookeeper();
    String service = Zk.uniqueName("interop-zkweb");
    int port = Env.freePort();
    String app = "http://127.0.0.1:" + port;
    ConfigurableApplicationContext ctx = ZkWebApp.start(Zk.hosts(), Zk.basePath(), service, port, SESSION_TIMEOUT_MS);
    try {
      // 1. listed, as a foreign instance
      long listedMs = Zk.await("GET /services lists " + service + " on port " + port, 15_000, 50,
          () -> listedOn(service, port) != null, () -> Zk.listed(service));
      JsonNode inst = listedOn(service, port);
      Zk.assertWithin("Spring app started → listed by GET /services", listedMs, 2_000);
      assertEquals("zookeeper", inst.path("source").asText(), "source of " + inst);
      assertTrue(inst.path("service_url").asText().startsWith("http://127.0.0.1:" + port), "service_url of " + inst);
      String id = inst.path("instance_id").asText();
      assertTrue(!id.isEmpty(), "instance_id of " + inst);

      // 2. healthy once its /actuator/health answers UP
      AtomicReference<Object> health = new AtomicReference<>();
      Zk.await(app + "/actuator/health answers UP", 30_000, 100, () -> {
        try {
          HttpResponse<String> r = Env.get(app + "/actuator/health");
          health.set(r.statusCode() + " " + r.body());
          return r.statusCode() == 200 && "UP".equals(Env.parse(r.body()).path("status").asText());
        } catch (RuntimeException e) {
          health.set(e.toString());
          return false;
        }
      }, health::get);
      long limit = Math.round(Zk.healthIntervalSeconds() * 1000) + 2000;
      AtomicReference<Object> urlAnswer = new AtomicReference<>();
      long healthyMs = Zk.await("discover/" + service + " and services/" + service + "/url answer " + id, limit + 15_000, 100, () -> {
        if (!Zk.ids(Zk.discovered(service)).equals(List.of(id))) return false;
        HttpResponse<String> r = Env.get(Zk.registry() + "/services/" + Env.enc(service) + "/url");
        urlAnswer.set(r.statusCode() + " " + r.body());
        if (r.statusCode() != 200) return false;
        JsonNode u = Env.parse(r.body());
        return id.equals(u.path("instance_id").asText()) && u.path("url").asText().startsWith(app);
      }, () -> "listed: " + Zk.listed(service) + "; url: " + urlAnswer.get());
      Zk.assertWithin("/actuator/health UP → discover and services/{name}/url answer it", healthyMs, limit);
      JsonNode d = Zk.byId(Zk.discovered(service), id);
      assertNotNull(d);
      assertEquals("healthy", d.path("status").asText(), "discover: " + d);
      assertEquals("zookeeper", d.path("source").asText(), "discover: " + d);

      // 3. not ours to deregister
      HttpResponse<String> r = Zk.deregister(service, id);
      assertEquals(409, r.statusCode(), "deregister of a ZooKeeper-registered instance: " + r.body());
      String type = r.headers().firstValue("Content-Type").orElse("");
      assertTrue(type.startsWith("application/problem+json"), "Content-Type " + type + ": " + r.body());
      JsonNode problem = Env.parse(r.body());
      assertEquals(409, problem.path("status").asInt(), "problem status: " + r.body());
      assertNotNull(listedOn(service, port), "still listed after the refused deregister");

      // 4. gone once the app closes
      long closing = System.nanoTime();
      ctx.close(); // Spring Cloud Zookeeper deletes its znode, then closes its session
      long closeMs = (System.nanoTime() - closing) / 1_000_000;
      long goneMs = closeMs + Zk.await("GET /services no longer lists " + service, SESSION_TIMEOUT_MS + 15_000, 50,
          () -> Zk.listed(service).isEmpty(), () -> Zk.listed(service));
      System.out.println("[interop] (the context's close() itself took " + closeMs + " ms)");
      Zk.assertWithin("Spring app close() → gone from GET /services", goneMs, SESSION_TIMEOUT_MS + 2_000);
      assertEquals(404, Env.get(Zk.registry() + "/discover/" + Env.enc(service)).statusCode(), "discover after close");
    } finally {
      ctx.close();
    }
  }
}
