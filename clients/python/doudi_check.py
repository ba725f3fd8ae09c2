#!/usr/bin/env python3
"""A foreign (non-Rust) client of the doudi hub: Python grpcio over mutual TLS.

Generates the Python stubs from proto/ at run time into a temporary directory (nothing generated is
committed), connects with the example certificates and checks, against a running hub:

  1. push: PushFacts of an assistance fact as civil_affairs -> FACT_OUTCOME_ACCEPTED; again -> DUPLICATE
  2. get: GetRecipient as medical_insurance -> the fact, with monthly_benefit
  3. list: ListRecipients as civil_affairs, division_code 621022 -> total_size >= 1
  4. a permission denial: GetRecipient as leading_group -> PERMISSION_DENIED
  5. Chinese text in a status message: the county office civil_affairs-621022 lists 621002 ->
     PERMISSION_DENIED whose message names both 西峰区 and 环县 (percent-encoded on the wire as the
     gRPC protocol requires; grpcio must hand it back decoded)
  6. WatchChanges with a resume: watch from now as civil_affairs (the first message is a heartbeat with the
     starting cursor), push a fact, receive its change; cancel; push another; watch again from the first
     change's cursor -> the second fact's change, and never the first again
  7. google.rpc error details (docs/errors.md), decoded from the grpc-status-details-bin trailer with grpcio-status
     (rpc_status.from_call) and googleapis-common-protos: the refusal of check 4 carries ErrorInfo reason
     PERMISSION_DENIED_BY_POLICY in domain doudi.v1 (a value of doudi.v1.ErrorReason) and a zh-CN
     LocalizedMessage; PushWarnings with two bad warnings -> INVALID_ARGUMENT with ErrorInfo INVALID_FIELD and a
     BadRequest naming warnings[0].id_number and warnings[1].reason, in that order
  8. gzip: PushFacts sent gzip-compressed (compression=grpc.Compression.Gzip) -> ACCEPTED, and the fact reads back
     (grpcio asks for gzip responses too: the hub answers gzip)

Usage: doudi_check.py --target localhost:50051 [--certs certs-example] [--proto proto]
Prints one "ok:" line per check; on the first failed check prints "FAIL: ..." and exits 1.
"""

import argparse
import importlib
import os
import subprocess
import sys
import tempfile
import time

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# A valid GB 11643 number (check digit 5), distinct from the one the Node client and grpcurl use.
ID_NUMBER = "621022199001010215"
DIVISION = "621022101203"  # a village of 环县 (621022)


class CheckFailed(Exception):
    pass


def ok(msg):
    print(f"ok: python: {msg}", flush=True)


def expect(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def generate_stubs(proto_dir, out_dir):
    """python -m grpc_tools.protoc -I proto --python_out --grpc_python_out proto/doudi/v1/*.proto"""
    protos = sorted(
        os.path.join(proto_dir, "doudi", "v1", f)
        for f in os.listdir(os.path.join(proto_dir, "doudi", "v1"))
        if f.endswith(".proto")
    )
    cmd = [sys.executable, "-m", "grpc_tools.protoc", "-I", proto_dir,
           f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", *protos]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise CheckFailed(f"protoc failed ({res.returncode}): {res.stderr.strip()}")
    sys.path.insert(0, out_dir)
    return tuple(importlib.import_module(f"doudi.v1.{m}") for m in (
        "exchange_pb2", "exchange_pb2_grpc", "facts_pb2", "coordination_pb2", "coordination_pb2_grpc", "errors_pb2"))


def error_details(e):
    """The google.rpc details of a failed call, by type name (ErrorInfo, BadRequest, ...), from the
    grpc-status-details-bin trailer. Fails the check when the trailer is missing or disagrees with the status."""
    st = rpc_status.from_call(e)
    expect(st is not None, f"{e.code()} {e.details()!r}: no grpc-status-details-bin trailer")
    expect(st.code == e.code().value[0], f"details say code {st.code}, the status {e.code()}")
    expect(st.message == e.details(), f"details say message {st.message!r}, the status {e.details()!r}")
    out = {}
    for any_ in st.details:
        for cls in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, error_details_pb2.RetryInfo,
                    error_details_pb2.QuotaFailure, error_details_pb2.LocalizedMessage):
            if any_.Is(cls.DESCRIPTOR):
                msg = cls()
                any_.Unpack(msg)
                out[cls.DESCRIPTOR.name] = msg
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default=os.environ.get("DOUDI_TARGET", "localhost:50051"))
    ap.add_argument("--certs", default=os.path.join(ROOT, "certs-example"))
    ap.add_argument("--proto", default=os.path.join(ROOT, "proto"))
    ap.add_argument("--timeout", type=float, default=15.0, help="seconds per call (and to connect)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="doudi-py-stubs-") as out:
        exchange_pb2, exchange_grpc, facts_pb2, coordination_pb2, coordination_grpc, errors_pb2 = \
            generate_stubs(args.proto, out)
        ok(f"stubs generated from {os.path.relpath(args.proto, os.getcwd())} (grpcio {grpc.__version__})")

        def read(name):
            with open(os.path.join(args.certs, name), "rb") as f:
                return f.read()

        ca = read("ca.pem")
        channels = []

        def stub(agency, service=None):
            creds = grpc.ssl_channel_credentials(
                root_certificates=ca,
                private_key=read(f"{agency}.key"),
                certificate_chain=read(f"{agency}.pem"))
            ch = grpc.secure_channel(args.target, creds)
            channels.append(ch)
            try:
                grpc.channel_ready_future(ch).result(timeout=args.timeout)
            except grpc.FutureTimeoutError:
                raise CheckFailed(f"no TLS connection to {args.target} as {agency} within {args.timeout} s")
            return (service or exchange_grpc.RecipientExchangeStub)(ch)

        def rpc_error(call, request):
            """Make a call that must fail; return its grpc.RpcError."""
            try:
                resp = call(request, timeout=args.timeout)
            except grpc.RpcError as e:
                return e
            raise CheckFailed(f"expected an error, got a response: {resp}")

        try:
            # 1. push, then the same again
            civil = stub("civil_affairs")
            fact_id = f"PY-{int(time.time() * 1000)}-{os.getpid()}"  # fresh per run: reruns on one hub pass
            push = exchange_pb2.PushFactsRequest(facts=[facts_pb2.Fact(
                fact_id=fact_id, source_version=1, id_number=ID_NUMBER, division_code=DIVISION,
                valid_from="2023-01-01",
                assistance=facts_pb2.Assistance(
                    program=facts_pb2.PROGRAM_DIBAO, residence=facts_pb2.RESIDENCE_RURAL, rural_class=2,
                    household_id="HH-PY", monthly_benefit="442.00",
                    status=facts_pb2.ASSISTANCE_STATUS_ACTIVE))])
            outcome_name = exchange_pb2.FactOutcome.Name
            for want in ("FACT_OUTCOME_ACCEPTED", "FACT_OUTCOME_DUPLICATE"):
                resp = civil.PushFacts(push, timeout=args.timeout)
                got = [outcome_name(r.outcome) for r in resp.results]
                expect(got == [want], f"PushFacts {fact_id}: want [{want}], got {got} {list(resp.results)}")
            ok(f"push {fact_id}: FACT_OUTCOME_ACCEPTED, then FACT_OUTCOME_DUPLICATE")

            # 2. get as medical_insurance (reads every assistance field)
            medical = stub("medical_insurance")
            get = exchange_pb2.GetRecipientRequest(id_number=ID_NUMBER, as_of="2023-06-30",
                                                   purpose="foreign client check (python)")
            rec = medical.GetRecipient(get, timeout=args.timeout)
            mine = [f for f in rec.facts if f.fact_id == fact_id]
            expect(len(mine) == 1, f"GetRecipient: fact {fact_id} not among {[f.fact_id for f in rec.facts]}")
            f = mine[0]
            expect(f.WhichOneof("payload") == "assistance", f"GetRecipient: payload {f.WhichOneof('payload')}")
            expect(f.assistance.monthly_benefit == "442.00",
                   f"GetRecipient: monthly_benefit {f.assistance.monthly_benefit!r}, want '442.00'")
            expect(f.agency == "civil_affairs", f"GetRecipient: agency {f.agency!r}")
            ok(f"get as medical_insurance: {fact_id} with monthly_benefit {f.assistance.monthly_benefit}")

            # 3. list as civil_affairs
            lst = civil.ListRecipients(exchange_pb2.ListRecipientsRequest(
                division_code="621022", as_of="2023-06-30", purpose="foreign client check (python)"),
                timeout=args.timeout)
            expect(lst.total_size >= 1, f"ListRecipients 621022: total_size {lst.total_size}")
            expect(any(r.id_number == ID_NUMBER for r in lst.recipients) or lst.next_page_token,
                   "ListRecipients 621022: the pushed person is not on the first (last) page")
            ok(f"list 621022 as civil_affairs: total_size {lst.total_size}")

            # 4. permission denial
            e = rpc_error(stub("leading_group").GetRecipient, get)
            expect(e.code() == grpc.StatusCode.PERMISSION_DENIED,
                   f"leading_group GetRecipient: {e.code()} {e.details()!r}, want PERMISSION_DENIED")
            ok(f"leading_group GetRecipient: PERMISSION_DENIED ({e.details()})")
            denied = e

            # 5. Chinese text in the status message, decoded by grpcio
            county = stub("civil_affairs-621022")
            e = rpc_error(county.ListRecipients,
                          exchange_pb2.ListRecipientsRequest(division_code="621002", as_of="2023-06-30"))
            msg = e.details() or ""
            expect(e.code() == grpc.StatusCode.PERMISSION_DENIED,
                   f"county office lists 621002: {e.code()} {msg!r}, want PERMISSION_DENIED")
            expect("西峰区" in msg and "环县" in msg,
                   f"status message should name 西峰区 and 环县 intact, got {msg!r}")
            expect("%E" not in msg.upper(), f"status message still percent-encoded: {msg!r}")
            ok(f"status message with Chinese text intact: {msg}")

            # 6. WatchChanges, then a resume from the last cursor received
            def assistance_fact(fid):
                return exchange_pb2.PushFactsRequest(facts=[facts_pb2.Fact(
                    fact_id=fid, source_version=1, id_number=ID_NUMBER, division_code=DIVISION,
                    valid_from="2023-01-01",
                    assistance=facts_pb2.Assistance(
                        program=facts_pb2.PROGRAM_DIBAO, residence=facts_pb2.RESIDENCE_RURAL, rural_class=2,
                        household_id="HH-PY", monthly_benefit="442.00",
                        status=facts_pb2.ASSISTANCE_STATUS_ACTIVE))])

            def next_change(stream, ours):
                """The next change about one of `ours` (other clients may push to the same hub meanwhile)."""
                for c in stream:
                    if not c.heartbeat and c.fact.fact_id in ours:
                        return c
                raise CheckFailed("WatchChanges ended without a status")

            first_id, second_id = fact_id + "-W1", fact_id + "-W2"
            watch = civil.WatchChanges(exchange_pb2.WatchChangesRequest(
                purpose="foreign client check (python)"), timeout=args.timeout)
            hb = next(watch)
            expect(hb.heartbeat, f"WatchChanges: the first message should be a heartbeat, got {hb}")
            civil.PushFacts(assistance_fact(first_id), timeout=args.timeout)
            c1 = next_change(watch, {first_id, second_id})
            expect(c1.fact.fact_id == first_id and c1.cursor > hb.cursor,
                   f"WatchChanges: want {first_id} after cursor {hb.cursor}, got {c1.fact.fact_id} at {c1.cursor}")
            expect(exchange_pb2.ChangeType.Name(c1.type) == "CHANGE_TYPE_CREATED"
                   and c1.id_number_masked == ID_NUMBER[:6] + "********" + ID_NUMBER[14:]
                   and c1.fact.assistance.monthly_benefit == "442.00", f"WatchChanges: change {c1}")
            watch.cancel()
            civil.PushFacts(assistance_fact(second_id), timeout=args.timeout)
            watch = civil.WatchChanges(exchange_pb2.WatchChangesRequest(
                after_cursor=c1.cursor, purpose="foreign client check (python)"), timeout=args.timeout)
            c2 = next_change(watch, {first_id, second_id})
            expect(c2.fact.fact_id == second_id and c2.cursor > c1.cursor,
                   f"WatchChanges after {c1.cursor}: want {second_id}, got {c2.fact.fact_id} at {c2.cursor}")
            watch.cancel()
            ok(f"watch: {first_id} at cursor {c1.cursor}; resumed after it: {second_id} at cursor {c2.cursor}")

            # 7. google.rpc error details
            d = error_details(denied)
            info, zh = d.get("ErrorInfo"), d.get("LocalizedMessage")
            expect(info is not None and zh is not None, f"permission refusal: details {sorted(d)}")
            expect(info.reason == "PERMISSION_DENIED_BY_POLICY" and info.domain == "doudi.v1",
                   f"permission refusal: ErrorInfo {info.reason!r} in {info.domain!r}")
            expect(errors_pb2.ErrorReason.Value(info.reason) > 0, f"{info.reason} is not a doudi.v1.ErrorReason")
            expect(zh.locale == "zh-CN" and not zh.message.isascii(), f"LocalizedMessage {zh.locale} {zh.message!r}")
            ok(f"permission refusal details: ErrorInfo {info.reason} ({info.domain}); {zh.locale}: {zh.message}")

            coordination = stub("civil_affairs", coordination_grpc.CoordinationStub)

            def warning_in(wid, **kw):
                w = dict(warning_id=wid, id_number=ID_NUMBER, division_code="621022",
                         reason=coordination_pb2.WARNING_REASON_ILLNESS)
                w.update(kw)
                msg = coordination_pb2.WarningIn(**w)
                msg.received_at.FromSeconds(1695866400)  # 2023-09-28T02:00:00Z
                return msg

            # Warning 0: a 17-digit ID number; warning 1: no reason. Both named, in request order.
            bad = coordination_pb2.PushWarningsRequest(warnings=[
                warning_in(fact_id + "-BAD0", id_number=ID_NUMBER[:17]),
                warning_in(fact_id + "-BAD1", reason=coordination_pb2.WARNING_REASON_UNSPECIFIED)])
            e = rpc_error(coordination.PushWarnings, bad)
            expect(e.code() == grpc.StatusCode.INVALID_ARGUMENT, f"PushWarnings: {e.code()} {e.details()!r}")
            d = error_details(e)
            expect(d.get("ErrorInfo") is not None and d["ErrorInfo"].reason == "INVALID_FIELD",
                   f"PushWarnings: ErrorInfo {d.get('ErrorInfo')}")
            fields = [v.field for v in d["BadRequest"].field_violations] if "BadRequest" in d else None
            expect(fields == ["warnings[0].id_number", "warnings[1].reason"], f"PushWarnings: BadRequest fields {fields}")
            expect("RetryInfo" not in d, "PushWarnings: a bad request has no RetryInfo")
            ok(f"batch with bad fields: INVALID_FIELD, BadRequest {fields}")

            # 8. a gzip-compressed request (and a gzip response: grpcio asks for it)
            gz_id = fact_id + "-GZ"
            gz = exchange_pb2.PushFactsRequest(facts=[facts_pb2.Fact(
                fact_id=gz_id, source_version=1, id_number=ID_NUMBER, division_code=DIVISION,
                valid_from="2023-01-01",
                assistance=facts_pb2.Assistance(
                    program=facts_pb2.PROGRAM_DIBAO, residence=facts_pb2.RESIDENCE_RURAL, rural_class=2,
                    household_id="HH-PY", monthly_benefit="442.00",
                    status=facts_pb2.ASSISTANCE_STATUS_ACTIVE))])
            resp = civil.PushFacts(gz, timeout=args.timeout, compression=grpc.Compression.Gzip)
            got = [outcome_name(r.outcome) for r in resp.results]
            expect(got == ["FACT_OUTCOME_ACCEPTED"], f"gzip PushFacts {gz_id}: {got}")
            rec = medical.GetRecipient(get, timeout=args.timeout, compression=grpc.Compression.Gzip)
            mine = [f for f in rec.facts if f.fact_id == gz_id]
            expect(len(mine) == 1 and mine[0].assistance.monthly_benefit == "442.00",
                   f"gzip GetRecipient: {gz_id} not read back with monthly_benefit 442.00")
            ok(f"gzip: PushFacts {gz_id} ACCEPTED, read back with GetRecipient (gzip) as medical_insurance")
        finally:
            for ch in channels:
                ch.close()


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as e:
        print(f"FAIL: python: {e}", flush=True)
        sys.exit(1)
    except Exception as e:  # grpc.RpcError from an expected success, a timeout, a missing file...
        detail = f"{e.code()} {e.details()!r}" if hasattr(e, "code") and hasattr(e, "details") else repr(e)
        print(f"FAIL: python: unexpected {type(e).__name__}: {detail}", flush=True)
        sys.exit(1)
    print("python client: all checks passed", flush=True)
