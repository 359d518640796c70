package interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import interop.client.ClientApp;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.core.env.Environment;

/**
 * (A) Authentication of {@code /config-server} on the secured instance (API_TOKENS): a token as
 * {@code Authorization: Bearer} or as the HTTP Basic password (what
 * {@code spring.cloud.config.username/password} send) with {@code config:read}; secrets only for
 * {@code secrets:read}; a Spring Boot client with the token as its password reads its values.
 */
class SecuredConfigServerTest {
  static final String APP = "secured-app";
  static final String SECRET = "s3cret-" + Long.toHexString(System.nanoTime());

  static String base;

  static String bearer(String which) {
    return "Bearer " + Env.token(which);
  }

  static String basic(String user, String password) {
    return "Basic " + Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
  }

  static void write(String service, String key, String json, boolean secret) {
    ObjectNode body = Env.JSON.createObjectNode();
    body.put("key", key);
    body.set("value", Env.parse(json));
    body.put("environment", "development");
    if (service != null) body.put("service_name", service);
    if (secret) body.put("secret", true);
    HttpResponse<String> r = Env.send("POST", base + "/api/v1/config", body, bearer("admin"));
    if (r.statusCode() == 409) {
      body.remove("key");
      r = Env.send("PUT", base + "/api/v1/config/" + Env.enc(key), body, bearer("admin"));
    }
    if (r.statusCode() / 100 != 2) fail("writing " + key + " answered " + r.statusCode() + ": " + r.body());
  }

  @BeforeAll
  static void setUp() {
    base = Env.securedUrl();
    write(null, "secured.greeting", "\"hello from the secured global scope\"", false);
    write(APP, "secured.pool", "{\"size\":5}", false);
    write(APP, "secured.db.password", "\"" + SECRET + "\"", true);
  }

  static JsonNode source(JsonNode env, String nameSuffix) {
    for (JsonNode s : env.path("propertySources")) {
      if (s.path("name").asText().endsWith(nameSuffix)) return s.path("source");
    }
    throw new AssertionError("no source named *" + nameSuffix + " in " + env);
  }

  @Test
  void refusesARequestWithoutAValidToken() {
    HttpResponse<String> none = Env.send("GET", base + "/config-server/" + APP + "/development", null, null);
    assertEquals(401, none.statusCode(), none.body());
    HttpResponse<String> wrong = Env.send("GET", base + "/config-server/" + APP + "/development", null,
        basic("app", "not-a-token-at-all-0000"));
    assertEquals(401, wrong.statusCode(), wrong.body());
  }

  @Test
  void bearerAndBasicReadWithoutSecrets() {
    for (String auth : new String[] {bearer("reader"), basic("any-user", Env.token("reader"))}) {
      HttpResponse<String> r = Env.send("GET", base + "/config-server/" + APP + "/development", null, auth);
      assertEquals(200, r.statusCode(), auth.split(" ")[0] + ": " + r.body());
      JsonNode env = Env.parse(r.body());
      JsonNode service = source(env, APP + "-development");
      assertEquals(5, service.path("secured.pool.size").asInt(-1), r.body());
      assertTrue(service.path("secured.pool.size").isIntegralNumber(), r.body());
      assertFalse(service.has("secured.db.password"), "a secret is left out without secrets:read: " + r.body());
      assertFalse(r.body().contains(SECRET), r.body());
      assertEquals("hello from the secured global scope",
          source(env, "application-development").path("secured.greeting").asText(), r.body());
      // the merged documents leave it out too
      HttpResponse<String> props = Env.send("GET", base + "/config-server/" + APP + "-development.properties", null, auth);
      assertEquals(200, props.statusCode(), props.body());
      assertTrue(props.body().contains("secured.pool.size"), props.body());
      assertFalse(props.body().contains(SECRET), props.body());
    }
  }

  @Test
  void secretsReadSeesTheSecret() {
    for (String auth : new String[] {bearer("secrets"), basic("app", Env.token("secrets"))}) {
      HttpResponse<String> r = Env.send("GET", base + "/config-server/" + APP + "/development", null, auth);
      assertEquals(200, r.statusCode(), r.body());
      assertEquals(SECRET, source(Env.parse(r.body()), APP + "-development").path("secured.db.password").asText(), r.body());
    }
  }

  @Test
  void aSpringBootClientAuthenticatesWithItsPassword() {
    try (ConfigurableApplicationContext ctx = ClientApp.start(base + "/config-server", APP, "development", Env.freePort(),
        "--spring.cloud.config.username=app", "--spring.cloud.config.password=" + Env.token("reader"))) {
      Environment env = ctx.getEnvironment();
      assertEquals(5, env.getProperty("secured.pool.size", Integer.class));
      assertEquals("hello from the secured global scope", env.getProperty("secured.greeting"));
      assertEquals(null, env.getProperty("secured.db.password"), "no secret without secrets:read");
    }
    try (ConfigurableApplicationContext ctx = ClientApp.start(base + "/config-server", APP, "development", Env.freePort(),
        "--spring.cloud.config.username=app", "--spring.cloud.config.password=" + Env.token("secrets"))) {
      assertEquals(SECRET, ctx.getEnvironment().getProperty("secured.db.password"));
    }
  }

  @Test
  void aSpringBootClientWithAWrongPasswordDoesNotStart() {
    // fail-fast: the 401 stops the application instead of starting it without its configuration.
    // (Quiet: SpringApplication logs the expected failure with its stack trace before logging is set up.)
    ch.qos.logback.classic.Logger log =
        (ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger(org.springframework.boot.SpringApplication.class);
    ch.qos.logback.classic.Level level = log.getLevel();
    log.setLevel(ch.qos.logback.classic.Level.OFF);
    try {
      Exception e = assertThrows(Exception.class, () -> ClientApp.start(base + "/config-server", APP, "development",
          Env.freePort(), "--spring.cloud.config.username=app", "--spring.cloud.config.password=wrong-password-0000000")
          .close());
      Throwable t = e;
      while (t.getCause() != null && !String.valueOf(t.getMessage()).contains("401")) t = t.getCause();
      assertTrue(String.valueOf(t.getMessage()).contains("401"), "the failure is the server's 401: " + e);
    } finally {
      log.setLevel(level);
    }
  }
}
