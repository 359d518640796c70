package interop;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.TreeSet;

/**
 * Compares JSON values as a Java client sees them: the same JSON type (string, boolean, null,
 * integral number, decimal number, array, object) and the same value. Numbers compare by value
 * within their kind, so Jackson's IntNode 25 equals LongNode 25, but 25 never equals 25.0 or "25".
 */
public final class JsonCompare {
  private JsonCompare() {}

  public static String kind(JsonNode n) {
    if (n == null || n.isMissingNode()) return "absent";
    if (n.isNull()) return "null";
    if (n.isTextual()) return "string";
    if (n.isBoolean()) return "boolean";
    if (n.isIntegralNumber()) return "integer";
    if (n.isNumber()) return "decimal";
    if (n.isArray()) return "array";
    if (n.isObject()) return "object";
    return n.getNodeType().toString();
  }

  /** {@code value (kind)}, for messages. */
  public static String show(JsonNode n) {
    return (n == null || n.isMissingNode() ? "<absent>" : n.toString()) + " (" + kind(n) + ")";
  }

  public static boolean same(JsonNode a, JsonNode b) {
    return differences("", a, b).isEmpty();
  }

  /** Every difference between {@code a} (expected) and {@code b} (actual), one line each. */
  public static List<String> differences(String path, JsonNode a, JsonNode b) {
    List<String> out = new ArrayList<>();
    diff(path, a, b, out);
    return out;
  }

  private static void diff(String path, JsonNode a, JsonNode b, List<String> out) {
    String ka = kind(a);
    String kb = kind(b);
    if (!ka.equals(kb)) {
      out.add(path + ": expected " + show(a) + ", got " + show(b));
      return;
    }
    switch (ka) {
      case "integer", "decimal" -> {
        if (a.decimalValue().compareTo(b.decimalValue()) != 0) {
          out.add(path + ": expected " + show(a) + ", got " + show(b));
        }
      }
      case "array" -> {
        if (a.size() != b.size()) {
          out.add(path + ": expected " + a.size() + " elements " + a + ", got " + b.size() + " " + b);
          return;
        }
        for (int i = 0; i < a.size(); i++) diff(path + "[" + i + "]", a.get(i), b.get(i), out);
      }
      case "object" -> {
        TreeSet<String> names = new TreeSet<>();
        a.fieldNames().forEachRemaining(names::add);
        b.fieldNames().forEachRemaining(names::add);
        for (String f : names) {
          String p = path.isEmpty() ? f : path + " > " + f;
          if (!a.has(f)) out.add(p + ": not expected, got " + show(b.get(f)));
          else if (!b.has(f)) out.add(p + ": expected " + show(a.get(f)) + ", absent");
          else diff(p, a.get(f), b.get(f), out);
        }
      }
      case "absent", "null" -> { }
      default -> {
        if (!a.equals(b)) out.add(path + ": expected " + show(a) + ", got " + show(b));
      }
    }
  }

  public static List<String> fieldNames(JsonNode o) {
    List<String> names = new ArrayList<>();
    for (Iterator<String> it = o.fieldNames(); it.hasNext(); ) names.add(it.next());
    return names;
  }
}
