// A foreign (non-Rust) client of the doudi hub: grpc-java over mutual TLS, built only from Debian's packages.
//
// clients/java/run.sh generates the Java classes from proto/ at run time (protoc + /usr/bin/grpc_java_plugin into a
// temporary directory; nothing generated is committed), compiles this file with javac and runs it. It connects with
// the example certificates and checks, against a running hub:
//   1. push: PushFacts of an assistance fact as civil_affairs -> FACT_OUTCOME_ACCEPTED; again -> DUPLICATE
//   2. get: GetRecipient as medical_insurance -> the fact, with monthly_benefit
//   3. list: ListRecipients as civil_affairs, division_code 621022 -> total_size >= 1
//   4. a permission denial: GetRecipient as leading_group -> PERMISSION_DENIED
//   5. Chinese text in a status message: the county office civil_affairs-621022 lists 621002 -> PERMISSION_DENIED
//      whose message names 西峰区 and 环县 intact (percent-encoded on the wire; grpc-java decodes it)
//   6. WatchChanges with a resume: watch from now (the first message is a heartbeat with the starting cursor), push
//      a fact, receive its change; cancel; push another; watch again after the first change's cursor -> the second
//      fact's change, never the first again
//   7. google.rpc error details from grpc-status-details-bin (io.grpc.protobuf.StatusProto): the refusal of check 4
//      carries ErrorInfo PERMISSION_DENIED_BY_POLICY in domain doudi.v1 (a doudi.v1.ErrorReason) and a zh-CN
//      LocalizedMessage; PushWarnings with two bad warnings -> INVALID_ARGUMENT, ErrorInfo INVALID_FIELD and a
//      BadRequest naming warnings[0].id_number and warnings[1].reason, in that order
//   8. gzip: PushFacts sent with withCompression("gzip") -> ACCEPTED, read back; a stream tracer shows the request
//      went out smaller than its message (compressed) and the answer came back gzip too (grpc-java asks for it)
//   9. a ListRecipients page near grpc-java's default 4 MiB inbound limit (maxInboundMessageSize): 1,000 persons with
//      12 assistance facts each (fact_id and household_id at their 128-character maximum) in a fresh village. A full
//      page (page_size 1,000, the hub's maximum) is over 4 MiB: the hub's page limit counts persons, not bytes, and a
//      person's facts are not paged in a list. So: (a) with the limit raised to 16 MiB the full page is read (> 4 MiB);
//      (b) with the default limit the same page is refused at the client (RESOURCE_EXHAUSTED, which grpc-java 1.41
//      wraps in CANCELLED "Failed to read message." for a gzip answer); (c) the largest page_size whose
//      page stays under 98% of 4 MiB, computed from (a)'s bytes per person, is read with the default limit, and
//      "near" means at least 90% of 4 MiB (3.6 MiB) and below 4 MiB
//  10. a deadline shorter than the call: the full page of check 9 with a deadline of a twentieth of its measured time
//      -> DEADLINE_EXCEEDED. The hub stops the work: tonic drops the handler's future when grpc-timeout expires (or
//      the client resets the stream), so the read never finishes. After waiting twice the full call's time the audit
//      log (ListAccessEvents), which a read writes just before it answers, holds no event with that call's purpose,
//      while the completed reads of check 9 each have theirs; with --metrics, the hub's doudi_grpc_requests_total
//      for ListRecipients with code CANCELLED rose by one (the call it ended without an answer). A deadline that
//      falls while the answer is being sent (after the handler returned) would find the event written: measured
//      in a debug build, the handler takes 200-250 ms of a 400-600 ms full call; the deadline is then 20-30 ms.
//
// Debian specifics (grpc-java 1.41, Netty 4.1.48, protobuf-java 3.21, OpenJDK 17; run.sh handles each):
//   - TLS goes through OpenSSL (netty-tcnative, SslProvider.OPENSSL): Debian's Netty has no JDK ALPN support. run.sh
//     copies libnetty-tcnative.so under the name Netty looks for (libnetty_tcnative.so) and sets java.library.path.
//   - Keys: `doudi certs init` writes PKCS#8 EC keys (BEGIN PRIVATE KEY), which Netty's keyManager(cert, key) reads as
//     they are; no conversion is needed. A PKCS#1/SEC1 key (BEGIN EC PRIVATE KEY) would need
//     `openssl pkcs8 -topk8 -nocrypt -in old.key -out agency.key` first.
//   - google.rpc.ErrorInfo is not in Debian's proto-google-common-protos (1.16): run.sh generates
//     google/rpc/status.proto and error_details.proto from golang-github-gogo-googleapis-dev's copies instead.
//   - Outer classes: audit.proto and coordination.proto define a service of the file's name, so their messages are in
//     AuditOuterClass and CoordinationOuterClass; the others in Exchange, Facts, Errors.
//
// Usage: run.sh --target localhost:50051 [--certs certs-example] [--timeout 15] [--metrics http://127.0.0.1:9464/metrics]
// Prints one "ok:" line per check; on the first failed check prints "FAIL: ..." and exits 1.

import com.google.protobuf.Any;
import com.google.protobuf.Timestamp;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.LocalizedMessage;
import doudi.v1.AuditGrpc;
import doudi.v1.AuditOuterClass.AccessEvent;
import doudi.v1.AuditOuterClass.ListAccessEventsRequest;
import doudi.v1.AuditOuterClass.ListAccessEventsResponse;
import doudi.v1.CoordinationGrpc;
import doudi.v1.CoordinationOuterClass.PushWarningsRequest;
import doudi.v1.CoordinationOuterClass.WarningIn;
import doudi.v1.CoordinationOuterClass.WarningReason;
import doudi.v1.Errors.ErrorReason;
import doudi.v1.Exchange.Change;
import doudi.v1.Exchange.ChangeType;
import doudi.v1.Exchange.FactOutcome;
import doudi.v1.Exchange.FactResult;
import doudi.v1.Exchange.GetRecipientRequest;
import doudi.v1.Exchange.ListRecipientsRequest;
import doudi.v1.Exchange.ListRecipientsResponse;
import doudi.v1.Exchange.PushFactsRequest;
import doudi.v1.Exchange.PushFactsResponse;
import doudi.v1.Exchange.Recipient;
import doudi.v1.Exchange.WatchChangesRequest;
import doudi.v1.Facts.Assistance;
import doudi.v1.Facts.AssistanceStatus;
import doudi.v1.Facts.Fact;
import doudi.v1.Facts.Program;
import doudi.v1.Facts.Residence;
import doudi.v1.RecipientExchangeGrpc;
import doudi.v1.RecipientExchangeGrpc.RecipientExchangeBlockingStub;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ClientStreamTracer;
import io.grpc.ConnectivityState;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.protobuf.StatusProto;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.io.File;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

public final class DoudiCheck {
  /** A valid GB 11643 number (check digit 1), distinct from the ones the Python and Node clients use. */
  static final String ID_NUMBER = "621022198707070311";
  /** A village of 环县 (621022). */
  static final String DIVISION = "621022101203";
  static final String AS_OF = "2023-06-30";
  static final String PURPOSE = "foreign client check (java)";
  /** grpc-java's default maxInboundMessageSize. */
  static final int DEFAULT_INBOUND = 4 * 1024 * 1024;
  /** Check 9's data set: persons, facts per person. */
  static final int BIG_PERSONS = 1_000;
  static final int FACTS_PER_PERSON = 12;

  static final class CheckFailed extends RuntimeException {
    CheckFailed(String msg) {
      super(msg);
    }
  }

  static void ok(String msg) {
    System.out.println("ok: java: " + msg);
    System.out.flush();
  }

  static void expect(boolean cond, String msg) {
    if (!cond) throw new CheckFailed(msg);
  }

  final String target;
  final File certs;
  final long timeoutMs;
  /** The hub's metrics URL (optional): check 10 then also reads the CANCELLED count there. */
  final String metrics;
  final List<ManagedChannel> channels = new ArrayList<>();

  DoudiCheck(String target, File certs, long timeoutMs, String metrics) {
    this.target = target;
    this.certs = certs;
    this.timeoutMs = timeoutMs;
    this.metrics = metrics;
  }

  /** A TLS channel as `agency` (its certificate and PKCS#8 key from certs/), connected within the timeout. */
  ManagedChannel channel(String agency) throws Exception {
    SslContext ssl =
        GrpcSslContexts.configure(SslContextBuilder.forClient(), SslProvider.OPENSSL)
            .trustManager(new File(certs, "ca.pem"))
            .keyManager(new File(certs, agency + ".pem"), new File(certs, agency + ".key"))
            .build();
    ManagedChannel ch = NettyChannelBuilder.forTarget(target).sslContext(ssl).build();
    channels.add(ch);
    long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
    ConnectivityState state;
    while ((state = ch.getState(true)) != ConnectivityState.READY) {
      if (System.nanoTime() > until) {
        throw new CheckFailed("no TLS connection to " + target + " as " + agency + " within " + timeoutMs + " ms (" + state + ")");
      }
      Thread.sleep(20);
    }
    return ch;
  }

  RecipientExchangeBlockingStub exchange(ManagedChannel ch) {
    return RecipientExchangeGrpc.newBlockingStub(ch).withDeadlineAfter(timeoutMs, TimeUnit.MILLISECONDS);
  }

  /** A call that must fail: its status. */
  static StatusRuntimeException refused(Runnable call) {
    try {
      call.run();
    } catch (StatusRuntimeException e) {
      return e;
    }
    throw new CheckFailed("expected an error, got a response");
  }

  static Fact assistanceFact(String factId, String idNumber, String division, String householdId) {
    return Fact.newBuilder()
        .setFactId(factId)
        .setSourceVersion(1)
        .setIdNumber(idNumber)
        .setDivisionCode(division)
        .setValidFrom("2023-01-01")
        .setAssistance(
            Assistance.newBuilder()
                .setProgram(Program.PROGRAM_DIBAO)
                .setResidence(Residence.RESIDENCE_RURAL)
                .setRuralClass(2)
                .setHouseholdId(householdId)
                .setMonthlyBenefit("442.00")
                .setStatus(AssistanceStatus.ASSISTANCE_STATUS_ACTIVE))
        .build();
  }

  static PushFactsRequest push(Fact... facts) {
    return PushFactsRequest.newBuilder().addAllFacts(List.of(facts)).build();
  }

  static List<FactOutcome> outcomes(PushFactsResponse r) {
    return r.getResultsList().stream().map(FactResult::getOutcome).toList();
  }

  /** The google.rpc details of a refusal, by message name, from grpc-status-details-bin. */
  static Map<String, Any> details(StatusRuntimeException e) {
    com.google.rpc.Status st = StatusProto.fromThrowable(e);
    expect(st != null, e.getStatus() + ": no grpc-status-details-bin trailer");
    expect(st.getCode() == e.getStatus().getCode().value(), "details say code " + st.getCode() + ", the status " + e.getStatus().getCode());
    expect(st.getMessage().equals(e.getStatus().getDescription()), "details say message " + st.getMessage() + ", the status " + e.getStatus().getDescription());
    Map<String, Any> out = new HashMap<>();
    for (Any a : st.getDetailsList()) {
      out.put(a.getTypeUrl().substring(a.getTypeUrl().lastIndexOf('/') + 1), a);
    }
    return out;
  }

  /** Bytes a call sent and received, on the wire and as messages (a ClientStreamTracer). */
  static final class Sizes extends ClientStreamTracer.Factory implements ClientInterceptor {
    final AtomicLong outWire = new AtomicLong(), outMessage = new AtomicLong();
    final AtomicLong inWire = new AtomicLong(), inMessage = new AtomicLong();

    @Override
    public ClientStreamTracer newClientStreamTracer(ClientStreamTracer.StreamInfo info, Metadata headers) {
      return new ClientStreamTracer() {
        @Override public void outboundWireSize(long n) { outWire.addAndGet(n); }
        @Override public void outboundUncompressedSize(long n) { outMessage.addAndGet(n); }
        @Override public void inboundWireSize(long n) { inWire.addAndGet(n); }
        @Override public void inboundUncompressedSize(long n) { inMessage.addAndGet(n); }
      };
    }

    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> m, CallOptions o, Channel next) {
      return next.newCall(m, o.withStreamTracerFactory(this));
    }
  }

  /** A valid GB 11643 number in 环县 born on `birth`, with sequence number `seq` (0–999). */
  static String idNumber(LocalDate birth, int seq) {
    String base = String.format("621022%04d%02d%02d%03d", birth.getYear(), birth.getMonthValue(), birth.getDayOfMonth(), seq);
    int[] w = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    int sum = 0;
    for (int i = 0; i < 17; i++) sum += (base.charAt(i) - '0') * w[i];
    return base + "10X98765432".charAt(sum % 11);
  }

  static String padded(String s, int len) {
    return (s + "-" + "x".repeat(len)).substring(0, len);
  }

  void run() throws Exception {
    String factId = "JAVA-" + System.currentTimeMillis() + "-" + ProcessHandle.current().pid(); // fresh per run

    // 1. push, then the same again
    ManagedChannel civilCh = channel("civil_affairs");
    PushFactsRequest first = push(assistanceFact(factId, ID_NUMBER, DIVISION, "HH-JAVA"));
    for (FactOutcome want : List.of(FactOutcome.FACT_OUTCOME_ACCEPTED, FactOutcome.FACT_OUTCOME_DUPLICATE)) {
      PushFactsResponse r = exchange(civilCh).pushFacts(first);
      expect(outcomes(r).equals(List.of(want)), "PushFacts " + factId + ": want [" + want + "], got " + r.getResultsList());
    }
    ok("push " + factId + ": FACT_OUTCOME_ACCEPTED, then FACT_OUTCOME_DUPLICATE");

    // 2. get as medical_insurance (reads every assistance field)
    ManagedChannel medicalCh = channel("medical_insurance");
    GetRecipientRequest get = GetRecipientRequest.newBuilder().setIdNumber(ID_NUMBER).setAsOf(AS_OF).setPurpose(PURPOSE).build();
    Recipient rec = exchange(medicalCh).getRecipient(get);
    List<Fact> mine = rec.getFactsList().stream().filter(f -> f.getFactId().equals(factId)).toList();
    expect(mine.size() == 1, "GetRecipient: fact " + factId + " not among " + rec.getFactsList().stream().map(Fact::getFactId).toList());
    Fact f = mine.get(0);
    expect(f.getPayloadCase() == Fact.PayloadCase.ASSISTANCE, "GetRecipient: payload " + f.getPayloadCase());
    expect(f.getAssistance().getMonthlyBenefit().equals("442.00"), "GetRecipient: monthly_benefit " + f.getAssistance().getMonthlyBenefit());
    expect(f.getAgency().equals("civil_affairs"), "GetRecipient: agency " + f.getAgency());
    ok("get as medical_insurance: " + factId + " with monthly_benefit " + f.getAssistance().getMonthlyBenefit());

    // 3. list as civil_affairs
    ListRecipientsResponse list = exchange(civilCh).listRecipients(
        ListRecipientsRequest.newBuilder().setDivisionCode("621022").setAsOf(AS_OF).setPurpose(PURPOSE).build());
    expect(list.getTotalSize() >= 1, "ListRecipients 621022: total_size " + list.getTotalSize());
    expect(list.getRecipientsList().stream().anyMatch(r -> r.getIdNumber().equals(ID_NUMBER)) || !list.getNextPageToken().isEmpty(),
        "ListRecipients 621022: the pushed person is not on the first (last) page");
    ok("list 621022 as civil_affairs: total_size " + list.getTotalSize());

    // 4. permission denial
    ManagedChannel leadingCh = channel("leading_group");
    StatusRuntimeException denied = refused(() -> exchange(leadingCh).getRecipient(get));
    expect(denied.getStatus().getCode() == Status.Code.PERMISSION_DENIED, "leading_group GetRecipient: " + denied.getStatus() + ", want PERMISSION_DENIED");
    ok("leading_group GetRecipient: PERMISSION_DENIED (" + denied.getStatus().getDescription() + ")");

    // 5. Chinese text in the status message, decoded by grpc-java
    ManagedChannel countyCh = channel("civil_affairs-621022");
    StatusRuntimeException e = refused(() -> exchange(countyCh).listRecipients(
        ListRecipientsRequest.newBuilder().setDivisionCode("621002").setAsOf(AS_OF).build()));
    String msg = String.valueOf(e.getStatus().getDescription());
    expect(e.getStatus().getCode() == Status.Code.PERMISSION_DENIED, "county office lists 621002: " + e.getStatus() + ", want PERMISSION_DENIED");
    expect(msg.contains("西峰区") && msg.contains("环县"), "status message should name 西峰区 and 环县 intact, got " + msg);
    expect(!msg.toUpperCase().contains("%E"), "status message still percent-encoded: " + msg);
    ok("status message with Chinese text intact: " + msg);

    // 6. WatchChanges, then a resume after the last cursor received
    checkWatch(civilCh, factId);

    // 7. google.rpc error details
    Map<String, Any> d = details(denied);
    expect(d.containsKey("google.rpc.ErrorInfo") && d.containsKey("google.rpc.LocalizedMessage"), "permission refusal: details " + d.keySet());
    ErrorInfo info = d.get("google.rpc.ErrorInfo").unpack(ErrorInfo.class);
    LocalizedMessage zh = d.get("google.rpc.LocalizedMessage").unpack(LocalizedMessage.class);
    expect(info.getReason().equals("PERMISSION_DENIED_BY_POLICY") && info.getDomain().equals("doudi.v1"),
        "permission refusal: ErrorInfo " + info.getReason() + " in " + info.getDomain());
    expect(ErrorReason.valueOf(info.getReason()).getNumber() > 0, info.getReason() + " is not a doudi.v1.ErrorReason");
    expect(zh.getLocale().equals("zh-CN") && !zh.getMessage().chars().allMatch(c -> c < 128), "LocalizedMessage " + zh.getLocale() + " " + zh.getMessage());
    ok("permission refusal details: ErrorInfo " + info.getReason() + " (" + info.getDomain() + "); " + zh.getLocale() + ": " + zh.getMessage());

    var coordination = CoordinationGrpc.newBlockingStub(civilCh).withDeadlineAfter(timeoutMs, TimeUnit.MILLISECONDS);
    Timestamp received = Timestamp.newBuilder().setSeconds(1695866400).build(); // 2023-09-28T02:00:00Z
    WarningIn.Builder w = WarningIn.newBuilder().setIdNumber(ID_NUMBER).setDivisionCode("621022")
        .setReason(WarningReason.WARNING_REASON_ILLNESS).setReceivedAt(received);
    // Warning 0: a 17-digit ID number; warning 1: no reason. Both named, in request order.
    PushWarningsRequest bad = PushWarningsRequest.newBuilder()
        .addWarnings(w.clone().setWarningId(factId + "-BAD0").setIdNumber(ID_NUMBER.substring(0, 17)))
        .addWarnings(w.clone().setWarningId(factId + "-BAD1").setReason(WarningReason.WARNING_REASON_UNSPECIFIED))
        .build();
    e = refused(() -> coordination.pushWarnings(bad));
    expect(e.getStatus().getCode() == Status.Code.INVALID_ARGUMENT, "PushWarnings: " + e.getStatus());
    d = details(e);
    expect(d.containsKey("google.rpc.ErrorInfo") && d.get("google.rpc.ErrorInfo").unpack(ErrorInfo.class).getReason().equals("INVALID_FIELD"),
        "PushWarnings: details " + d.keySet());
    expect(d.containsKey("google.rpc.BadRequest"), "PushWarnings: no BadRequest among " + d.keySet());
    List<String> fields = d.get("google.rpc.BadRequest").unpack(BadRequest.class).getFieldViolationsList().stream()
        .map(BadRequest.FieldViolation::getField).toList();
    expect(fields.equals(List.of("warnings[0].id_number", "warnings[1].reason")), "PushWarnings: BadRequest fields " + fields);
    expect(!d.containsKey("google.rpc.RetryInfo"), "PushWarnings: a bad request has no RetryInfo");
    ok("batch with bad fields: INVALID_FIELD, BadRequest " + fields);

    // 8. a gzip-compressed request (and a gzip answer: grpc-java sends grpc-accept-encoding: gzip)
    String gzId = padded(factId + "-GZ", 128); // long, repetitive ids: the compressed message is clearly smaller
    Sizes sizes = new Sizes();
    PushFactsResponse r = exchange(civilCh).withInterceptors(sizes).withCompression("gzip")
        .pushFacts(push(assistanceFact(gzId, ID_NUMBER, DIVISION, padded("HH-JAVA-GZ", 128))));
    expect(outcomes(r).equals(List.of(FactOutcome.FACT_OUTCOME_ACCEPTED)), "gzip PushFacts: " + r.getResultsList());
    expect(sizes.outWire.get() < sizes.outMessage.get(),
        "gzip PushFacts: sent " + sizes.outWire.get() + " bytes for a " + sizes.outMessage.get() + "-byte message: not compressed");
    Sizes back = new Sizes();
    rec = exchange(medicalCh).withInterceptors(back).withCompression("gzip").getRecipient(get);
    expect(rec.getFactsList().stream().anyMatch(x -> x.getFactId().equals(gzId) && x.getAssistance().getMonthlyBenefit().equals("442.00")),
        "gzip GetRecipient: " + gzId + " not read back with monthly_benefit 442.00");
    expect(back.inWire.get() < back.inMessage.get(),
        "gzip GetRecipient: received " + back.inWire.get() + " bytes for a " + back.inMessage.get() + "-byte answer: not compressed");
    ok("gzip: PushFacts ACCEPTED (" + sizes.outMessage.get() + "-byte message sent as " + sizes.outWire.get()
        + " bytes), read back as medical_insurance (answer " + back.inMessage.get() + " bytes, " + back.inWire.get() + " on the wire)");

    // 9 and 10. a page near 4 MiB; a deadline shorter than the call
    checkPagesAndDeadline(civilCh, factId);
  }

  void checkWatch(ManagedChannel civilCh, String factId) throws Exception {
    String firstId = factId + "-W1", secondId = factId + "-W2";
    Set<String> ours = Set.of(firstId, secondId);
    RecipientExchangeBlockingStub civil = exchange(civilCh);
    // A blocking server stream is cancelled through the gRPC Context it was started in.
    Context.CancellableContext watching = Context.current().withCancellation();
    Iterator<Change> watch = watching.call(() -> civil.watchChanges(WatchChangesRequest.newBuilder().setPurpose(PURPOSE).build()));
    Change hb = watch.next();
    expect(hb.getHeartbeat(), "WatchChanges: the first message should be a heartbeat, got " + hb);
    exchange(civilCh).pushFacts(push(assistanceFact(firstId, ID_NUMBER, DIVISION, "HH-JAVA")));
    Change c1 = nextOf(watch, ours);
    expect(c1.getFact().getFactId().equals(firstId) && c1.getCursor() > hb.getCursor(),
        "WatchChanges: want " + firstId + " after cursor " + hb.getCursor() + ", got " + c1.getFact().getFactId() + " at " + c1.getCursor());
    expect(c1.getType() == ChangeType.CHANGE_TYPE_CREATED
        && c1.getIdNumberMasked().equals(ID_NUMBER.substring(0, 6) + "********" + ID_NUMBER.substring(14))
        && c1.getFact().getAssistance().getMonthlyBenefit().equals("442.00"), "WatchChanges: change " + c1);
    watching.cancel(null);

    exchange(civilCh).pushFacts(push(assistanceFact(secondId, ID_NUMBER, DIVISION, "HH-JAVA")));
    Context.CancellableContext resumed = Context.current().withCancellation();
    Iterator<Change> again = resumed.call(() -> exchange(civilCh).watchChanges(
        WatchChangesRequest.newBuilder().setAfterCursor(c1.getCursor()).setPurpose(PURPOSE).build()));
    Change c2 = nextOf(again, ours);
    expect(c2.getFact().getFactId().equals(secondId) && c2.getCursor() > c1.getCursor(),
        "WatchChanges after " + c1.getCursor() + ": want " + secondId + ", got " + c2.getFact().getFactId() + " at " + c2.getCursor());
    resumed.cancel(null);
    ok("watch: " + firstId + " at cursor " + c1.getCursor() + "; resumed after it: " + secondId + " at cursor " + c2.getCursor());
  }

  /** The next change about one of `ours` (other clients may push to the same hub meanwhile). */
  static Change nextOf(Iterator<Change> watch, Set<String> ours) {
    while (watch.hasNext()) {
      Change c = watch.next();
      if (!c.getHeartbeat() && ours.contains(c.getFact().getFactId())) return c;
    }
    throw new CheckFailed("WatchChanges ended without a status");
  }

  void checkPagesAndDeadline(ManagedChannel civilCh, String factId) throws Exception {
    // A fresh village of 环县 for this run's 1,000 persons, so the page holds exactly them.
    ThreadLocalRandom rnd = ThreadLocalRandom.current();
    String village = String.format("621022%03d%03d", 100 + rnd.nextInt(900), 100 + rnd.nextInt(900));
    LocalDate born = LocalDate.of(1950, 1, 1).plusDays(rnd.nextInt(15_000));
    int seq = 500 + rnd.nextInt(500); // the fixed ID numbers of the clients (and grpcurl) use sequence numbers below 500
    List<Fact> facts = new ArrayList<>();
    for (int p = 0; p < BIG_PERSONS; p++) {
      String id = idNumber(born.plusDays(p), seq);
      for (int k = 0; k < FACTS_PER_PERSON; k++) {
        facts.add(assistanceFact(padded(factId + "-P" + p + "-" + k, 128), id, village, padded("HH-" + factId + "-" + p, 128)));
      }
    }
    long t0 = System.nanoTime();
    int accepted = 0;
    for (int i = 0; i < facts.size(); i += 2_000) {
      PushFactsResponse r = exchange(civilCh).pushFacts(
          PushFactsRequest.newBuilder().addAllFacts(facts.subList(i, Math.min(i + 2_000, facts.size()))).build());
      accepted += (int) r.getCounts().getAccepted();
    }
    expect(accepted == facts.size(), "big push: " + accepted + " of " + facts.size() + " facts ACCEPTED");
    ok(String.format("pushed %,d facts (%,d persons x %d, fact_id and household_id of 128 characters) into village %s in %.1f s",
        facts.size(), BIG_PERSONS, FACTS_PER_PERSON, village, (System.nanoTime() - t0) / 1e9));

    String tag = Long.toString(System.nanoTime(), 36);
    ListRecipientsRequest.Builder page = ListRecipientsRequest.newBuilder().setDivisionCode(village).setAsOf(AS_OF).setPageSize(BIG_PERSONS);

    // 9a. the full page, with the inbound limit raised
    String fullPurpose = "java full page " + tag;
    t0 = System.nanoTime();
    ListRecipientsResponse full = exchange(civilCh).withMaxInboundMessageSize(16 * 1024 * 1024)
        .listRecipients(page.clone().setPurpose(fullPurpose).build());
    long fullMs = (System.nanoTime() - t0) / 1_000_000;
    int fullBytes = full.getSerializedSize();
    expect(full.getRecipientsCount() == BIG_PERSONS && full.getRecipients(0).getFactsCount() == FACTS_PER_PERSON,
        "full page: " + full.getRecipientsCount() + " persons, the first with " + full.getRecipients(0).getFactsCount() + " facts");
    expect(fullBytes > DEFAULT_INBOUND, "full page: " + fullBytes + " bytes, expected over 4 MiB");
    ok(String.format("page_size %d with maxInboundMessageSize 16 MiB: %,d bytes (%.2f MiB) in %d ms", BIG_PERSONS, fullBytes, fullBytes / 1048576.0, fullMs));

    // 9b. the same page with grpc-java's default limit
    StatusRuntimeException e = refused(() -> exchange(civilCh).listRecipients(page.clone().setPurpose("java over the limit " + tag).build()));
    // grpc-java 1.41 says so as CANCELLED "Failed to read message." caused by the RESOURCE_EXHAUSTED of the gzip
    // inflater; an uncompressed answer (or a later grpc-java) is RESOURCE_EXHAUSTED itself.
    Status tooBig = e.getStatus();
    if (tooBig.getCode() == Status.Code.CANCELLED && tooBig.getCause() != null) tooBig = Status.fromThrowable(tooBig.getCause());
    expect(tooBig.getCode() == Status.Code.RESOURCE_EXHAUSTED && String.valueOf(tooBig.getDescription()).contains("exceeds maximum size"),
        "full page with the default limit: " + e.getStatus() + ", want RESOURCE_EXHAUSTED (message exceeds maximum size)");
    ok("page_size " + BIG_PERSONS + " with the default 4 MiB limit: refused at the client: " + e.getStatus().getCode()
        + (tooBig == e.getStatus() ? "" : " caused by " + tooBig.getCode()) + " (" + tooBig.getDescription() + ")");

    // 9c. the largest page under 98% of the default limit
    double perPerson = (double) fullBytes / BIG_PERSONS;
    int nearSize = (int) Math.floor(0.98 * DEFAULT_INBOUND / perPerson);
    String nearPurpose = "java near page " + tag;
    ListRecipientsResponse near = exchange(civilCh).listRecipients(page.clone().setPageSize(nearSize).setPurpose(nearPurpose).build());
    int nearBytes = near.getSerializedSize();
    expect(near.getRecipientsCount() == nearSize && !near.getNextPageToken().isEmpty(),
        "near page: " + near.getRecipientsCount() + " persons, want " + nearSize + " and a next page");
    expect(nearBytes < DEFAULT_INBOUND && nearBytes >= 0.9 * DEFAULT_INBOUND,
        "near page: " + nearBytes + " bytes, want at least 90% of 4 MiB and under it");
    ok(String.format("page_size %d with the default limit: %,d bytes (%.1f%% of 4 MiB), read", nearSize, nearBytes, 100.0 * nearBytes / DEFAULT_INBOUND));

    // 10. a deadline shorter than the call
    long deadlineMs = Math.max(5, fullMs / 20);
    String cutPurpose = "java deadline " + tag;
    long cancelledBefore = metrics == null ? 0 : cancelledLists();
    t0 = System.nanoTime();
    e = refused(() -> RecipientExchangeGrpc.newBlockingStub(civilCh).withMaxInboundMessageSize(16 * 1024 * 1024)
        .withDeadlineAfter(deadlineMs, TimeUnit.MILLISECONDS).listRecipients(page.clone().setPurpose(cutPurpose).build()));
    long cutMs = (System.nanoTime() - t0) / 1_000_000;
    expect(e.getStatus().getCode() == Status.Code.DEADLINE_EXCEEDED, "ListRecipients with a " + deadlineMs + " ms deadline: " + e.getStatus());
    ok("page_size " + BIG_PERSONS + " with a " + deadlineMs + " ms deadline: DEADLINE_EXCEEDED after " + cutMs + " ms");
    // Had the hub gone on, the read would have written its audit event well within twice the full call's time.
    Thread.sleep(Math.max(1_000, 2 * fullMs));
    Map<String, Integer> events = accessEvents(civilCh, Set.of(fullPurpose, nearPurpose, cutPurpose));
    expect(events.getOrDefault(fullPurpose, 0) == 1 && events.getOrDefault(nearPurpose, 0) == 1,
        "audit log: the completed reads' events " + events + ", want one each for '" + fullPurpose + "' and '" + nearPurpose + "'");
    expect(!events.containsKey(cutPurpose), "audit log: the read cut by its deadline was finished anyway: " + events);
    ok("the hub stopped the read at the deadline: after " + Math.max(1_000, 2 * fullMs)
        + " ms the audit log has no event for it (and one for each completed read)");
    if (metrics != null) {
      long cancelled = cancelledLists() - cancelledBefore;
      expect(cancelled == 1, "metrics: ListRecipients of civil_affairs counted CANCELLED " + cancelled + " times during the cut call, want 1");
      ok("the hub ended the call without an answer: doudi_grpc_requests_total{method=ListRecipients,code=CANCELLED} +1");
    }
  }

  /** doudi_grpc_requests_total of civil_affairs' ListRecipients with code CANCELLED, from the hub's metrics. */
  long cancelledLists() throws Exception {
    HttpResponse<String> r = HttpClient.newHttpClient().send(
        HttpRequest.newBuilder(URI.create(metrics)).timeout(Duration.ofMillis(timeoutMs)).build(), HttpResponse.BodyHandlers.ofString());
    expect(r.statusCode() == 200, "GET " + metrics + ": HTTP " + r.statusCode());
    return r.body().lines()
        .filter(l -> l.startsWith("doudi_grpc_requests_total{") && l.contains("method=\"ListRecipients\"")
            && l.contains("agency=\"civil_affairs\"") && l.contains("code=\"CANCELLED\""))
        .mapToLong(l -> (long) Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
        .sum();
  }

  /** How many ListRecipients audit events of civil_affairs carry each of `purposes` (of the last 10 minutes' newest 1,000). */
  Map<String, Integer> accessEvents(ManagedChannel civilCh, Set<String> purposes) {
    Timestamp from = Timestamp.newBuilder().setSeconds(System.currentTimeMillis() / 1000 - 600).build();
    ListAccessEventsResponse r = AuditGrpc.newBlockingStub(civilCh).withDeadlineAfter(timeoutMs, TimeUnit.MILLISECONDS)
        .listAccessEvents(ListAccessEventsRequest.newBuilder().setAgency("civil_affairs").setFrom(from).setPageSize(1_000).build());
    Map<String, Integer> out = new HashMap<>();
    for (AccessEvent ev : r.getEventsList()) {
      if (ev.getMethod().endsWith("/ListRecipients") && purposes.contains(ev.getPurpose())) out.merge(ev.getPurpose(), 1, Integer::sum);
    }
    return out;
  }

  public static void main(String[] args) {
    String target = System.getenv().getOrDefault("DOUDI_TARGET", "localhost:50051");
    String certs = System.getProperty("doudi.certs", "certs-example"); // run.sh: the repository's certs-example/
    long timeoutMs = 15_000;
    String metrics = null;
    for (int i = 0; i < args.length; i += 2) {
      if (i + 1 >= args.length) usage();
      switch (args[i]) {
        case "--target" -> target = args[i + 1];
        case "--certs" -> certs = args[i + 1];
        case "--timeout" -> timeoutMs = (long) (Double.parseDouble(args[i + 1]) * 1000);
        case "--metrics" -> metrics = args[i + 1];
        default -> usage();
      }
    }
    if (!OpenSsl.isAvailable()) {
      System.out.println("FAIL: java: netty-tcnative's OpenSSL is not available (run through clients/java/run.sh, which sets "
          + "java.library.path): " + OpenSsl.unavailabilityCause());
      System.exit(1);
    }
    DoudiCheck check = new DoudiCheck(target, new File(certs), timeoutMs, metrics);
    int rc = 0;
    try {
      ok("stubs generated from proto/ (grpc-java " + ManagedChannel.class.getPackage().getImplementationVersion()
          + ", TLS by " + OpenSsl.versionString() + " through netty-tcnative)");
      check.run();
      System.out.println("java client: all checks passed");
    } catch (CheckFailed e) {
      System.out.println("FAIL: java: " + e.getMessage());
      rc = 1;
    } catch (StatusRuntimeException e) {
      System.out.println("FAIL: java: unexpected " + e.getStatus());
      rc = 1;
    } catch (Exception e) {
      System.out.println("FAIL: java: unexpected " + e);
      e.printStackTrace(System.out);
      rc = 1;
    } finally {
      for (ManagedChannel ch : check.channels) ch.shutdownNow();
    }
    System.exit(rc);
  }

  static void usage() {
    System.err.println("usage: run.sh [--target HOST:PORT] [--certs DIR] [--timeout SECS] [--metrics URL]");
    System.exit(2);
  }
}
