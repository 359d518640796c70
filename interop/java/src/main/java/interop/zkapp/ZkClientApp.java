package interop.zkapp;

import java.util.ArrayList;
import java.util.List;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.cloud.client.loadbalancer.LoadBalanced;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.web.client.RestClient;

/**
 * A non-web Spring Boot 3.5 application that only discovers: spring-cloud-starter-zookeeper-discovery
 * on a ZooKeeper ensemble under a given root (register=false, so it writes nothing there) and
 * Spring Cloud LoadBalancer without its cache, so every {@code LoadBalancerClient.choose} and
 * every call through the {@code @LoadBalanced} {@link RestClient.Builder} reads the instances
 * ZooKeeper holds at that moment. No component scan: it must not pick up the suite's other apps
 * (same JVM in the tests).
 */
@SpringBootConfiguration
@EnableAutoConfiguration
public class ZkClientApp {

  /** A RestClient.Builder whose clients resolve {@code http://<service>/…} through the LoadBalancer. */
  @Bean
  @LoadBalanced
  public RestClient.Builder loadBalancedRestClientBuilder() {
    return RestClient.builder();
  }

  /** Starts the app on ZooKeeper {@code connectString}, discovering under {@code root}. */
  public static ConfigurableApplicationContext start(String connectString, String root, String... extraArgs) {
    List<String> args = new ArrayList<>(List.of(
        "--spring.config.name=interop-zkclient",
        "--spring.application.name=interop-zkclient",
        "--spring.main.web-application-type=none",
        // spring-cloud-config-server/-client share the classpath: no config import here
        "--spring.cloud.config.enabled=false",
        "--spring.cloud.zookeeper.connect-string=" + connectString,
        "--spring.cloud.zookeeper.discovery.root=" + root,
        "--spring.cloud.zookeeper.discovery.register=false",
        // every choose() asks the DiscoveryClient, which reads ZooKeeper (no 35 s instance cache)
        "--spring.cloud.loadbalancer.cache.enabled=false",
        "--spring.main.banner-mode=off",
        "--logging.level.root=WARN"));
    args.addAll(List.of(extraArgs));
    return new SpringApplicationBuilder(ZkClientApp.class).run(args.toArray(String[]::new));
  }

  /** {@code java -cp … interop.zkapp.ZkClientApp <connectString> <root>}: a standalone client. */
  public static void main(String[] args) {
    start(args[0], args[1]);
  }
}
