package interop;

import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.openfeature.contrib.providers.ofrep.OfrepProvider;
import dev.openfeature.contrib.providers.ofrep.OfrepProviderOptions;
import dev.openfeature.sdk.Client;
import dev.openfeature.sdk.FlagEvaluationDetails;
import dev.openfeature.sdk.ImmutableContext;
import dev.openfeature.sdk.OpenFeatureAPI;
import dev.openfeature.sdk.Value;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * (C) The OpenFeature Java SDK with its OFREP provider pointed at config-service (base URL = the
 * service's URL; OFREP at /ofrep/v1/evaluate/flags/{key}) evaluates boolean, string, integer,
 * double and object flags with the same values, reasons and variants as config-service's REST
 * {@code POST /api/v1/feature-flags/evaluate}. The flags come from src/test/resources/flags.json,
 * the FLAGS_FILE run.sh starts the service with.
 */
class OfrepProviderTest {
  private static final String DOMAIN = "config-service-interop";
  private static Client client;

  @BeforeAll
  static void setUp() {
    OpenFeatureAPI api = OpenFeatureAPI.getInstance();
    api.setProviderAndWait(DOMAIN, OfrepProvider.constructProvider(
        OfrepProviderOptions.builder().baseUrl(Env.url()).build()));
    client = api.getClient(DOMAIN);
  }

  @AfterAll
  static void tearDown() {
    OpenFeatureAPI.getInstance().shutdown();
  }

  /** flag, type (our REST type), user, region (null = none), default value as JSON. */
  static Stream<Arguments> cases() {
    List<Arguments> a = new ArrayList<>();
    a.add(Arguments.of("interop-bool-on", "boolean", "user-1", null, "false"));
    a.add(Arguments.of("interop-bool-off", "boolean", "user-1", null, "true"));
    a.add(Arguments.of("interop-bool-targeted", "boolean", "user-1", null, "false"));
    a.add(Arguments.of("interop-bool-targeted", "boolean", "user-99", null, "false"));
    a.add(Arguments.of("interop-bool-region", "boolean", "user-1", "eu-west", "false"));
    a.add(Arguments.of("interop-bool-region", "boolean", "user-1", "us-east", "false"));
    for (int i = 1; i <= 6; i++) a.add(Arguments.of("interop-bool-split", "boolean", "user-" + i, null, "false"));
    a.add(Arguments.of("interop-string", "string", "user-1", null, "\"none\""));
    for (int i = 1; i <= 6; i++) a.add(Arguments.of("interop-string-split", "string", "user-" + i, null, "\"none\""));
    a.add(Arguments.of("interop-string-legacy", "string", "user-1", null, "\"none\""));
    a.add(Arguments.of("interop-int", "integer", "user-1", null, "0"));
    a.add(Arguments.of("interop-double", "float", "user-1", null, "0.5"));
    a.add(Arguments.of("interop-object", "object", "user-1", null, "{}"));
    a.add(Arguments.of("interop-object-region", "object", "user-1", "eu-west", "{}"));
    a.add(Arguments.of("interop-no-such-flag", "boolean", "user-1", null, "true"));
    a.add(Arguments.of("interop-no-such-flag", "string", "user-1", null, "\"dflt\""));
    return a.stream();
  }

  /** What our REST API answers: {value, reason, variant, error_code}. */
  static JsonNode rest(String flag, String type, String user, String region, JsonNode dflt) {
    ObjectNode body = Env.JSON.createObjectNode();
    body.put("flag_name", flag);
    body.put("type", type);
    body.put("user_id", user);
    if (region != null) body.putObject("context").put("region", region);
    body.set("default_value", dflt);
    body.put("environment", "development");
    HttpResponse<String> r = Env.send("POST", Env.url() + "/api/v1/feature-flags/evaluate", body);
    if (r.statusCode() != 200) fail("REST evaluate " + body + " answered " + r.statusCode() + ": " + r.body());
    return Env.parse(r.body());
  }

  static Object toJava(Value v) {
    if (v == null || v.isNull()) return null;
    if (v.isStructure()) {
      Map<String, Object> m = new HashMap<>();
      v.asStructure().asMap().forEach((k, x) -> m.put(k, toJava(x)));
      return m;
    }
    if (v.isList()) {
      List<Object> l = new ArrayList<>();
      for (Value x : v.asList()) l.add(toJava(x));
      return l;
    }
    return v.asObject();
  }

  static Value toValue(JsonNode n) {
    if (n.isObject()) {
      Map<String, Value> m = new HashMap<>();
      n.fields().forEachRemaining(e -> m.put(e.getKey(), toValue(e.getValue())));
      return new Value(new dev.openfeature.sdk.MutableStructure(m));
    }
    if (n.isArray()) {
      List<Value> l = new ArrayList<>();
      n.forEach(x -> l.add(toValue(x)));
      return new Value(l);
    }
    if (n.isBoolean()) return new Value(n.booleanValue());
    if (n.isIntegralNumber()) return new Value(n.intValue());
    if (n.isNumber()) return new Value(n.doubleValue());
    if (n.isTextual()) return new Value(n.textValue());
    return new Value();
  }

  /**
   * Flags that give no value of their own (a disabled string flag; an object flag whose strategy
   * does not match): REST answers the caller's default with DISABLED / DEFAULT. OFREP has no way
   * to say "use the code default" (open-feature/protocol#46), so the reason cannot match with the
   * Java OFREP provider 0.0.2; what must hold is that the application gets its own default value,
   * never a value of another type.
   */
  static Stream<Arguments> codeDefaultCases() {
    return Stream.of(
        Arguments.of("interop-string-off", "string", "user-1", null, "\"none\""),
        Arguments.of("interop-object-region", "object", "user-1", "us-east", "{\"fallback\":true}"));
  }

  @ParameterizedTest(name = "{0} as {1}, user {2}, region {3}")
  @MethodSource("codeDefaultCases")
  void aFlagWithoutAValueGivesTheApplicationItsDefault(String flag, String type, String user, String region, String dfltJson) {
    JsonNode dflt = Env.parse(dfltJson);
    JsonNode expected = rest(flag, type, user, region, dflt);
    FlagEvaluationDetails<?> d = evaluate(flag, type, user, region, dflt);
    Object v = d.getValue() instanceof Value val ? toJava(val) : d.getValue();
    List<String> problems = JsonCompare.differences("value", dflt, expected.path("value"));
    problems.replaceAll(x -> "REST " + x);
    for (String x : JsonCompare.differences("value", dflt, Env.JSON.valueToTree(v))) problems.add("OFREP provider " + x);
    if (!problems.isEmpty()) {
      fail(flag + " (" + type + ", " + user + ", region " + region + "): the application must get its default "
          + dflt + ":\n  " + String.join("\n  ", problems) + "\nREST: " + expected + "\nOFREP provider: value=" + v
          + " reason=" + d.getReason() + " variant=" + d.getVariant() + " error=" + d.getErrorCode() + " "
          + d.getErrorMessage() + "\nOFREP raw: " + ofrepRaw(flag, user, region));
    }
  }

  /** What POST /ofrep/v1/evaluate/flags/{key} answers, for messages. */
  static String ofrepRaw(String flag, String user, String region) {
    ObjectNode body = Env.JSON.createObjectNode();
    ObjectNode c = body.putObject("context");
    c.put("targetingKey", user);
    if (region != null) c.put("region", region);
    HttpResponse<String> r = Env.send("POST", Env.url() + "/ofrep/v1/evaluate/flags/" + flag, body);
    return r.statusCode() + " " + r.body();
  }

  static FlagEvaluationDetails<?> evaluate(String flag, String type, String user, String region, JsonNode dflt) {
    Map<String, Value> attrs = new HashMap<>();
    if (region != null) attrs.put("region", new Value(region));
    ImmutableContext ctx = new ImmutableContext(user, attrs);
    return switch (type) {
      case "boolean" -> client.getBooleanDetails(flag, dflt.booleanValue(), ctx);
      case "string" -> client.getStringDetails(flag, dflt.textValue(), ctx);
      case "integer" -> client.getIntegerDetails(flag, dflt.intValue(), ctx);
      case "float" -> client.getDoubleDetails(flag, dflt.doubleValue(), ctx);
      case "object" -> client.getObjectDetails(flag, toValue(dflt), ctx);
      default -> throw new IllegalArgumentException(type);
    };
  }

  @ParameterizedTest(name = "{0} as {1}, user {2}, region {3}")
  @MethodSource("cases")
  void ofrepProviderAnswersWhatTheRestApiAnswers(String flag, String type, String user, String region, String dfltJson) {
    JsonNode dflt = Env.parse(dfltJson);
    JsonNode expected = rest(flag, type, user, region, dflt);

    FlagEvaluationDetails<?> d = evaluate(flag, type, user, region, dflt);
    Object v = d.getValue() instanceof Value val ? toJava(val) : d.getValue();
    JsonNode got = Env.JSON.valueToTree(v);

    List<String> problems = new ArrayList<>();
    JsonNode want = expected.path("value");
    if (type.equals("float") && want.isIntegralNumber()) want = Env.JSON.valueToTree(want.doubleValue());
    problems.addAll(JsonCompare.differences("value", want, got));
    String wantReason = expected.path("reason").asText();
    if (!wantReason.equals(String.valueOf(d.getReason()))) {
      problems.add("reason: REST " + wantReason + ", OFREP provider " + d.getReason());
    }
    String wantError = expected.path("error_code").isMissingNode() || expected.path("error_code").isNull()
        ? null : expected.path("error_code").asText();
    String gotError = d.getErrorCode() == null ? null : d.getErrorCode().name();
    if (!java.util.Objects.equals(wantError, gotError)) {
      problems.add("error code: REST " + wantError + ", OFREP provider " + gotError + " (" + d.getErrorMessage() + ")");
    }
    JsonNode wantVariant = expected.path("variant");
    if (wantVariant.isTextual() && !wantVariant.asText().equals(d.getVariant())) {
      problems.add("variant: REST " + wantVariant.asText() + ", OFREP provider " + d.getVariant());
    }
    if (!problems.isEmpty()) {
      fail(flag + " (" + type + ", " + user + ", region " + region + "):\n  " + String.join("\n  ", problems)
          + "\nREST: " + expected + "\nOFREP provider: value=" + v + " reason=" + d.getReason() + " variant="
          + d.getVariant() + " error=" + d.getErrorCode() + " " + d.getErrorMessage()
          + "\nOFREP raw: " + ofrepRaw(flag, user, region));
    }
  }
}
