package dugaa.bench;

import java.util.ArrayList;
import java.util.List;

import org.apache.camel.Exchange;
import org.apache.camel.builder.RouteBuilder;
import org.apache.camel.component.http.HttpComponent;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.stereotype.Component;

/**
 * Kafka consumer -> for each hook: render + sign, HTTP POST, result record -> Kafka.
 *
 * Tuned as Camel's component documentation advises for throughput: one Kafka consumer per
 * partition ({@code consumersCount}), large poll batches, auto-commit every second (as the other
 * alternatives commit), and a pooled HTTP client with a connection per consumer; the results
 * producer batches ({@code lingerMs}). Errors of the HTTP call are a result, not a retry.
 */
@Component
public class DeliveryRoute extends RouteBuilder {

    @Value("${peer.bootstrap}") String bootstrap;
    @Value("${peer.topic}") String topic;
    @Value("${peer.group}") String group;
    @Value("${peer.results}") String results;
    @Value("${peer.urls}") String urls;
    @Value("${peer.timeout}") double timeout;
    @Value("${peer.partitions}") int partitions;

    @Override
    public void configure() {
        long millis = Math.round(timeout * 1000);
        // connection pool and timeouts are the component's (on an endpoint URI, an http
        // component passes unknown options on as query parameters)
        HttpComponent http = getContext().getComponent("http", HttpComponent.class);
        http.setConnectionsPerRoute(partitions);
        http.setMaxTotalConnections(partitions * 2);
        http.setConnectTimeout(millis);
        http.setConnectionRequestTimeout(millis);
        http.setResponseTimeout(millis);
        http.setSoTimeout(millis);
        String[] targets = urls.split(",");
        List<String> hooks = new ArrayList<>();
        for (int i = 0; i < targets.length; i++) {
            String hookId = i == 0 ? "camel" : "camel." + i;
            String endpoint = "direct:hook-" + i;
            hooks.add(endpoint);
            Webhook webhook = new Webhook(hookId);
            from(endpoint)
                .routeId("deliver-" + hookId)
                .process(webhook::render)
                .doTry()
                    .to(targets[i] + "?httpMethod=POST&throwExceptionOnFailure=false")
                .doCatch(Exception.class)
                    .setHeader(Exchange.HTTP_RESPONSE_CODE, constant(null))
                .end()
                .process(webhook::result)
                .to("kafka:" + results + "?brokers=" + bootstrap + "&lingerMs=5");
        }
        from("kafka:" + topic
                + "?brokers=" + bootstrap
                + "&groupId=" + group
                + "&autoOffsetReset=earliest"
                + "&consumersCount=" + partitions
                + "&maxPollRecords=500"
                + "&autoCommitIntervalMs=1000")
            .routeId("events")
            .process(Webhook::parse)
            .multicast().to(hooks.toArray(new String[0]));
    }
}
