package interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.TextNode;
import interop.client.ClientApp;
import interop.client.SvcProperties;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.core.env.ConfigurableEnvironment;
import org.springframework.core.env.EnumerablePropertySource;
import org.springframework.core.env.PropertySource;

/**
 * (A2) A Spring Boot 3.5 application with spring-cloud-starter-config and
 * {@code spring.config.import=configserver:} reads its configuration from config-service's
 * {@code /config-server} exactly as from a real Spring Cloud Config Server, and a
 * {@code @RefreshScope} bean picks up a change made through the REST API after
 * {@code POST /actuator/refresh}.
 */
class SpringBootClientTest {

  @BeforeAll
  static void setUp() {
    Servers.fixtureWritten();
  }

  /** What both servers must give the client (service entries over the global {@code svc}). */
  static void assertFixtureValues(ConfigurableApplicationContext ctx, String server) {
    SvcProperties p = ctx.getBean(SvcProperties.class);
    String where = " (from " + server + "; bound: " + p + ")";
    assertEquals("hello from interop-boot", p.getGreeting(), "service entry overrides the global one" + where);
    assertEquals(32, p.getPool().getSize(), "svc.pool.size: the service's value over the global object's" + where);
    assertEquals(1500L, p.getPool().getTimeoutMs(), "svc.pool.timeout-ms: from the global object" + where);
    assertEquals(0.75, p.getRatio(), "svc.ratio" + where);
    assertEquals(List.of("eu-west", "us-east"), p.getRegions(), "svc.regions: a list" + where);
    assertEquals(2, p.getEndpoints().size(), "svc.endpoints: a list of objects" + where);
    assertEquals("a", p.getEndpoints().get(0).getName(), where);
    assertEquals(8080, p.getEndpoints().get(0).getPort(), where);
    assertEquals("b", p.getEndpoints().get(1).getName(), where);
    assertEquals(8081, p.getEndpoints().get(1).getPort(), where);
    assertEquals(Boolean.TRUE, p.getEndpoints().get(1).getTls(), where);

    // The raw values in the imported property sources keep their JSON types.
    ConfigurableEnvironment env = ctx.getEnvironment();
    assertInstanceOf(Integer.class, raw(env, "svc.pool.size"), "svc.pool.size stays a number" + where);
    assertInstanceOf(Double.class, raw(env, "svc.ratio"), "svc.ratio stays a decimal" + where);
    assertInstanceOf(Boolean.class, raw(env, "svc.endpoints[1].tls"), "a boolean stays a boolean" + where);
    assertInstanceOf(String.class, raw(env, "svc.greeting"), where);
    assertEquals("hello from global development", env.getProperty("greeting"), "a global-only key" + where);
  }

  /** The value of {@code name} in the first configserver: property source that has it. */
  static Object raw(ConfigurableEnvironment env, String name) {
    List<String> names = new ArrayList<>();
    for (PropertySource<?> s : env.getPropertySources()) {
      names.add(s.getName());
      if (s.getName().startsWith("configserver:") && s.containsProperty(name)) return s.getProperty(name);
    }
    throw new AssertionError(name + " is in no configserver: property source; sources: " + names);
  }

  static List<String> configServerSources(ConfigurableEnvironment env) {
    List<String> names = new ArrayList<>();
    for (PropertySource<?> s : env.getPropertySources()) {
      if (s.getName().startsWith("configserver:")) {
        names.add(s.getName() + (s instanceof EnumerablePropertySource<?> e ? " " + e.getPropertyNames().length : ""));
      }
    }
    return names;
  }

  @Test
  void readsConfigServiceAndRefreshesAfterARestChange() throws Exception {
    int port = Env.freePort();
    try (ConfigurableApplicationContext ctx = ClientApp.start(
        Env.url() + "/config-server", Fixture.BOOT_APP, "development", port)) {
      assertTrue(configServerSources(ctx.getEnvironment()).size() >= 2,
          "sources imported: " + configServerSources(ctx.getEnvironment()));
      assertFixtureValues(ctx, "config-service");
      assertEquals(Fixture.REFRESH_V1, ctx.getBean(ClientApp.RefreshedMessage.class).message());

      String v2 = "v2-" + Long.toHexString(System.nanoTime());
      Env.putConfig("development", Fixture.BOOT_APP, "refresh.message", TextNode.valueOf(v2));
      try {
        HttpResponse<String> r = Env.send("POST", "http://127.0.0.1:" + port + "/actuator/refresh", "{}");
        assertEquals(200, r.statusCode(), "POST /actuator/refresh: " + r.body());
        assertTrue(r.body().contains("refresh.message"), "the refresh names the changed key: " + r.body());
        assertEquals(v2, ctx.getBean(ClientApp.RefreshedMessage.class).message(),
            "the @RefreshScope bean has the new value after POST /actuator/refresh");
        assertFixtureValues(ctx, "config-service, after the refresh");
      } finally {
        Env.putConfig("development", Fixture.BOOT_APP, "refresh.message", TextNode.valueOf(Fixture.REFRESH_V1));
      }
    }
  }

  @Test
  void readsTheSameFromTheRealConfigServer() throws Exception {
    String real = Servers.realConfigServer();
    try (ConfigurableApplicationContext ctx = ClientApp.start(real, Fixture.BOOT_APP, "development", Env.freePort())) {
      assertFixtureValues(ctx, "the real Spring Cloud Config Server");
      assertNotNull(ctx.getBean(ClientApp.RefreshedMessage.class).message());
      assertEquals(Fixture.REFRESH_V1, ctx.getBean(ClientApp.RefreshedMessage.class).message());
    }
  }
}
