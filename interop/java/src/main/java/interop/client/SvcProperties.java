package interop.client;

import java.util.ArrayList;
import java.util.List;
import org.springframework.boot.context.properties.ConfigurationProperties;

/** {@code svc.*}: bound from the config server's property sources. */
@ConfigurationProperties(prefix = "svc")
public class SvcProperties {
  private String greeting;
  private Double ratio;
  private final Pool pool = new Pool();
  private List<String> regions = new ArrayList<>();
  private List<Endpoint> endpoints = new ArrayList<>();

  public static class Pool {
    private Integer size;
    private Long timeoutMs;

    public Integer getSize() { return size; }
    public void setSize(Integer size) { this.size = size; }
    public Long getTimeoutMs() { return timeoutMs; }
    public void setTimeoutMs(Long timeoutMs) { this.timeoutMs = timeoutMs; }
    @Override public String toString() { return "Pool{size=" + size + ", timeoutMs=" + timeoutMs + "}"; }
  }

  public static class Endpoint {
    private String name;
    private Integer port;
    private Boolean tls;

    public String getName() { return name; }
    public void setName(String name) { this.name = name; }
    public Integer getPort() { return port; }
    public void setPort(Integer port) { this.port = port; }
    public Boolean getTls() { return tls; }
    public void setTls(Boolean tls) { this.tls = tls; }
    @Override public String toString() { return "Endpoint{name=" + name + ", port=" + port + ", tls=" + tls + "}"; }
  }

  public String getGreeting() { return greeting; }
  public void setGreeting(String greeting) { this.greeting = greeting; }
  public Double getRatio() { return ratio; }
  public void setRatio(Double ratio) { this.ratio = ratio; }
  public Pool getPool() { return pool; }
  public List<String> getRegions() { return regions; }
  public void setRegions(List<String> regions) { this.regions = regions; }
  public List<Endpoint> getEndpoints() { return endpoints; }
  public void setEndpoints(List<Endpoint> endpoints) { this.endpoints = endpoints; }

  @Override
  public String toString() {
    return "SvcProperties{greeting=" + greeting + ", ratio=" + ratio + ", pool=" + pool
        + ", regions=" + regions + ", endpoints=" + endpoints + "}";
  }
}
