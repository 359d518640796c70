package interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.yaml.snakeyaml.Yaml;

/**
 * (A1) Spring Cloud Config protocol parity: the real Spring Cloud Config Server (native profile)
 * serving {@link Fixture} as {@code {application}-{profile}.yml} / {@code application-{profile}.yml}
 * against config-service's {@code /config-server} holding the same entries written through its
 * REST API. Same sources in the same order (mapped by name: profile + scope), the same property
 * names in each, the same values with the same JSON types, the same merged winners; and the
 * same .json/.yml/.yaml/.properties documents.
 */
class SpringConfigServerParityTest {
  private static String real;
  private static String ours;

  private static final HttpClient HTTP = HttpClient.newBuilder()
      .version(HttpClient.Version.HTTP_1_1)
      .connectTimeout(Duration.ofSeconds(5))
      .build();

  @BeforeAll
  static void setUp() throws Exception {
    Servers.fixtureWritten();
    real = Servers.realConfigServer();
    ours = Env.url() + "/config-server";
  }

  record Answer(int status, String contentType, String body) {}

  static Answer fetch(String url) {
    try {
      HttpResponse<byte[]> r = HTTP.send(
          HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30)).GET().build(),
          HttpResponse.BodyHandlers.ofByteArray());
      return new Answer(r.statusCode(), r.headers().firstValue("content-type").orElse(""),
          new String(r.body(), StandardCharsets.UTF_8));
    } catch (Exception e) {
      throw new RuntimeException("GET " + url + ": " + e, e);
    }
  }

  /**
   * What a property source stands for, from its name: "{scope}/{profile}" where scope is
   * "service:{app}" for {app}-{profile}.yml / configservice:{app}-{profile}, "global" for
   * application-{profile}.yml / configservice:application-{profile}. Only the last segment of the
   * name counts (after the last '/' or ':'), without a file extension.
   */
  static String sourceKind(String name, String app, List<String> profiles) {
    String last = name.substring(Math.max(name.lastIndexOf('/'), name.lastIndexOf(':')) + 1);
    last = last.replaceFirst("\\.(ya?ml|properties|json)$", "");
    for (String p : profiles) {
      if (last.endsWith("-" + p)) {
        String prefix = last.substring(0, last.length() - p.length() - 1);
        String scope = prefix.equals("application") ? "global"
            : prefix.equals(app) ? "service:" + app : "other:" + prefix;
        return scope + "/" + p;
      }
    }
    return "unmapped:" + name;
  }

  static ObjectNode merged(JsonNode env) {
    ObjectNode m = Env.JSON.createObjectNode();
    for (JsonNode s : env.path("propertySources")) {
      for (String f : JsonCompare.fieldNames(s.path("source"))) {
        if (!m.has(f)) m.set(f, s.path("source").get(f));
      }
    }
    return m;
  }

  static JsonNode environment(String base, String path, List<String> problems, String who) {
    Answer a = fetch(base + path);
    if (a.status() != 200) {
      problems.add(who + " GET " + path + " answered " + a.status() + ": " + a.body());
      return null;
    }
    return Env.parse(a.body());
  }

  @ParameterizedTest(name = "GET /{0}/{1}")
  @CsvSource({
      "interop-app, 'development,staging'",
      "interop-app, 'staging,development'",
      "interop-app, development",
      "interop-app, staging",
      "interop-app, production",
      "no-such-app, development",
      "no-such-app, 'development,staging'",
      "no-such-app, production",
  })
  void environmentHasTheSameSourcesPropertiesAndWinners(String app, String profiles) {
    String path = "/" + app + "/" + profiles;
    List<String> problems = new ArrayList<>();
    JsonNode theirs = environment(real, path, problems, "real server");
    JsonNode mine = environment(ours, path, problems, "config-service");
    if (theirs == null || mine == null) fail(String.join("\n", problems));
    List<String> ps = Arrays.asList(profiles.split(","));

    List<String> theirKinds = new ArrayList<>();
    for (JsonNode s : theirs.path("propertySources")) theirKinds.add(sourceKind(s.path("name").asText(), app, ps));
    List<String> myKinds = new ArrayList<>();
    for (JsonNode s : mine.path("propertySources")) myKinds.add(sourceKind(s.path("name").asText(), app, ps));
    if (!theirKinds.equals(myKinds)) {
      problems.add("sources: the real server answers " + theirKinds + ", config-service " + myKinds
          + " (names " + namesOf(mine) + ")");
    } else {
      for (int i = 0; i < theirKinds.size(); i++) {
        JsonNode a = theirs.path("propertySources").get(i).path("source");
        JsonNode b = mine.path("propertySources").get(i).path("source");
        for (String d : JsonCompare.differences("", a, b)) problems.add("source " + theirKinds.get(i) + ": " + d);
      }
    }
    for (String d : JsonCompare.differences("", merged(theirs), merged(mine))) problems.add("merged (first wins): " + d);
    if (!problems.isEmpty()) {
      fail(problems.size() + " difference(s) for GET " + path + ":\n  " + String.join("\n  ", problems)
          + "\nreal server: " + theirs + "\nconfig-service: " + mine);
    }
  }

  private static List<String> namesOf(JsonNode env) {
    List<String> n = new ArrayList<>();
    for (JsonNode s : env.path("propertySources")) n.add(s.path("name").asText());
    return n;
  }

  @ParameterizedTest(name = "GET {0}")
  @ValueSource(strings = {
      "/interop-app/development,staging",
      "/interop-app/development,staging/main",
      "/interop-app/development",
      "/no-such-app/production",
  })
  void environmentHasTheSameNameProfilesAndLabel(String path) {
    List<String> problems = new ArrayList<>();
    JsonNode theirs = environment(real, path, problems, "real server");
    JsonNode mine = environment(ours, path, problems, "config-service");
    if (theirs == null || mine == null) fail(String.join("\n", problems));
    for (String f : List.of("name", "profiles", "label")) {
      for (String d : JsonCompare.differences(f, theirs.path(f), mine.path(f))) problems.add(d);
    }
    for (String f : List.of("version", "state")) {
      JsonNode v = mine.path(f);
      if (!(v.isNull() || v.isTextual())) problems.add(f + ": must be a string or null, got " + JsonCompare.show(v));
    }
    assertTrue(problems.isEmpty(), "GET " + path + ":\n  " + String.join("\n  ", problems)
        + "\nreal server: " + theirs + "\nconfig-service: " + mine);
  }

  @ParameterizedTest(name = "GET {0}")
  @ValueSource(strings = {
      "/interop-app-development,staging.json",
      "/interop-app-development,staging.yml",
      "/interop-app-development,staging.yaml",
      "/interop-app-development,staging.properties",
      "/interop-app-development.json",
      "/interop-app-staging.yml",
      "/main/interop-app-development.yml",
      "/interop-app-production.json",
      "/interop-app-production.yml",
      "/interop-app-production.properties",
      "/no-such-app-development.properties",
  })
  void documentFormsAreTheSame(String path) {
    Answer theirs = fetch(real + path);
    Answer mine = fetch(ours + path);
    List<String> problems = new ArrayList<>();
    if (theirs.status() != mine.status()) problems.add("status: expected " + theirs.status() + ", got " + mine.status());
    if (!mediaType(theirs.contentType()).equals(mediaType(mine.contentType()))) {
      problems.add("content-type: expected " + theirs.contentType() + ", got " + mine.contentType());
    }
    if (path.endsWith(".properties")) {
      TreeMap<String, String> a = properties(theirs.body());
      TreeMap<String, String> b = properties(mine.body());
      for (String k : a.keySet()) {
        if (!b.containsKey(k)) problems.add(k + ": expected '" + a.get(k) + "', absent");
        else if (!a.get(k).equals(b.get(k))) problems.add(k + ": expected '" + a.get(k) + "', got '" + b.get(k) + "'");
      }
      for (String k : b.keySet()) if (!a.containsKey(k)) problems.add(k + ": not expected, got '" + b.get(k) + "'");
    } else {
      JsonNode a = path.endsWith(".json") ? Env.parse(theirs.body()) : yamlTree(theirs.body());
      JsonNode b;
      try {
        b = path.endsWith(".json") ? Env.parse(mine.body()) : yamlTree(mine.body());
      } catch (RuntimeException e) {
        b = null;
        problems.add("body does not parse: " + e.getMessage());
      }
      if (b != null) problems.addAll(JsonCompare.differences("", a, b));
    }
    if (!problems.isEmpty()) {
      fail(problems.size() + " difference(s) for GET " + path + ":\n  " + String.join("\n  ", problems)
          + "\n--- real server:\n" + theirs.body() + "\n--- config-service:\n" + mine.body());
    }
  }

  static String mediaType(String contentType) {
    return contentType.split(";")[0].trim().toLowerCase(Locale.ROOT);
  }

  static JsonNode yamlTree(String text) {
    Object o = new Yaml().load(text);
    return o == null ? Env.JSON.createObjectNode() : Env.JSON.valueToTree(o);
  }

  /** Spring's .properties answer: one "key: value" a line. */
  static TreeMap<String, String> properties(String text) {
    TreeMap<String, String> m = new TreeMap<>();
    for (String line : text.split("\n")) {
      if (line.isBlank() || line.startsWith("#")) continue;
      int i = line.indexOf(':');
      int j = line.indexOf('=');
      int at = i < 0 ? j : j < 0 ? i : Math.min(i, j);
      if (at < 0) {
        m.put(line, "<no separator>");
        continue;
      }
      m.put(line.substring(0, at).trim(), line.substring(at + 1).trim());
    }
    return m;
  }

  @Test
  void theRealServerAnswersWhatTheHandoffSays() {
    // Guards the shapes reported in /tmp/handoff/spring_shapes.md: null and [] become "", {} is left out.
    JsonNode env = Env.parse(fetch(real + "/interop-app/development").body());
    JsonNode source = env.path("propertySources").get(0).path("source");
    assertEquals("", source.path("nothing").asText("<not text>"));
    assertEquals("", source.path("emptyList").asText("<not text>"));
    assertTrue(source.path("emptyMap").isMissingNode(), "an empty map is left out");
    // and the comparisons are not vacuous: 4 sources, staging's service file first
    JsonNode both = Env.parse(fetch(real + "/interop-app/development,staging").body());
    assertEquals(4, both.path("propertySources").size(), both.toString());
    assertEquals("service:interop-app/staging", sourceKind(
        both.path("propertySources").get(0).path("name").asText(), "interop-app", List.of("development", "staging")));
  }
}
