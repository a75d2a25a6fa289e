package dugaa.bench;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;

/**
 * The Apache Camel peer: {@code java -jar camel-peer.jar BOOTSTRAP TOPIC GROUP RESULTS URL[,URL...]
 * TIMEOUT PARTITIONS}, the arguments of the benchmark's other alternatives plus the partition count
 * (one Kafka consumer per partition). Each URL is a hook ({@code camel}, {@code camel.1}, ...).
 */
@SpringBootApplication
public class CamelPeer {

    public static void main(String[] args) {
        if (args.length < 7) {
            System.err.println("usage: camel-peer BOOTSTRAP TOPIC GROUP RESULTS URLS TIMEOUT PARTITIONS");
            System.exit(2);
        }
        String[] names = {"bootstrap", "topic", "group", "results", "urls", "timeout", "partitions"};
        for (int i = 0; i < names.length; i++) {
            System.setProperty("peer." + names[i], args[i]);
        }
        SpringApplication.run(CamelPeer.class);
    }
}
