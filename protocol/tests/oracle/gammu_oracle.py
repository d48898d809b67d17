#!/usr/bin/env python3
"""External oracle for smshub's PDU codec: libGammu, through python-gammu.

libGammu is the C code inside Gammu and gammu-smsd, written and field-tested by others, so it
is a fair judge of what we send and what we read. This script never trusts our codec: every
check compares our output with libGammu's reading of the same octets, or with libGammu's own
encoding of the same request. It must never write files or talk to the network.

Two modes, JSON in on stdin:

  gammu_oracle.py             Check vectors, a list of
      {"kind": "submit_parts", "name", "to", "text", "encoding": "gsm7"|"ucs2",
       "status_report", "ref16", "reference", "validity_minutes": int|null, "smsc": str|null,
       "pdus": [hex...], "tpdu_lens": [int...]}
        Our SMS-SUBMIT parts: gammu.DecodePDU of each part (type, number, SMSC, coding, UDH
        reference / part number / total, status-report bit, validity, AT+CMGS length),
        gammu.LinkSMS + gammu.DecodeSMS give back the text, and gammu.EncodeSMS splits the
        same text at the same places.
      {"kind": "decode", "name", "hex", "expected": {...}}
        A PDU we decoded: gammu.DecodePDU must agree on every field given in "expected"
        (type, number, smsc, text or data, concat, timestamp, message_reference, status,
        sc_timestamp, discharge_time, validity_minutes).
    Prints one line per mismatch and exits 1 if there was any, 0 otherwise.

  gammu_oracle.py --produce   Encode requests with libGammu, a list of
      {"kind": "gammu_submit", "name", "to", "text", "unicode", "ref16", "status_report",
       "validity": "1D"|null}
      {"kind": "gammu_deliver", "name", "from", "text", "unicode", "ref16", "smsc"}
    Prints a JSON list of {"name", "pdus": [hex...], "parts": [libGammu's reading of each
    part: number, smsc, text, concat]} for the Rust side to decode with our codec.

  gammu_oracle.py --decode    Read PDUs someone wrote after AT+CMGS (the hub's modem tests give
      what their emulated modem received), a JSON list of hex strings (SMSC prefix included).
    Prints {"parts": [libGammu's reading of each PDU: type, number, text, coding,
    status_report (TP-SRR), message_reference, concat, tpdu_len], "messages": [the parts
    linked by gammu.LinkSMS and read by gammu.DecodeSMS: number, text, parts]}, or exits 1
    naming a PDU libGammu cannot decode.

Exit codes: 0 ok, 1 mismatch, 2 bad input, 3 python-gammu missing.
"""

import binascii
import datetime
import json
import re
import sys

try:
    import gammu
except ImportError as error:  # pragma: no cover - depends on the machine
    print(f"python-gammu not installed: {error}", file=sys.stderr)
    sys.exit(3)

TYPES = {"deliver": "Deliver", "submit": "Submit", "status_report": "Status_Report"}
CODINGS = {"gsm7": "Default_No_Compression", "ucs2": "Unicode_No_Compression"}
MINUTES = {"M": 1, "H": 60, "D": 24 * 60, "W": 7 * 24 * 60}


def clean(text):
    """python-gammu copies as many characters as the septet count, so a GSM 7-bit text with
    extension characters comes back with a NUL and stale buffer contents after it.

    (A second python-gammu quirk is avoided rather than cleaned: in its Unicode text buffers
    '~' is an escape character, so UCS-2 texts given to this oracle contain no '~'.)"""
    return text.split("\x00", 1)[0] if isinstance(text, str) else text


def validity_minutes(text):
    """libGammu's reading of a relative validity period ('5M', '1440M', '7D', '8W', 'Max')."""
    if text == "NA":
        return None
    if text == "Max":
        return 63 * 7 * 24 * 60
    match = re.fullmatch(r"(\d+)([MHDW])", text)
    return int(match.group(1)) * MINUTES[match.group(2)] if match else text


def concat_of(udh):
    """libGammu's UDH as our concat shape, or None."""
    kind = udh.get("Type")
    if kind == "ConcatenatedMessages":
        return {"reference": udh["ID8bit"], "ref16": False, "seq": udh["PartNumber"], "total": udh["AllParts"]}
    if kind == "ConcatenatedMessages16bit":
        return {"reference": udh["ID16bit"], "ref16": True, "seq": udh["PartNumber"], "total": udh["AllParts"]}
    return None


def smsc_block(number):
    return {"Location": 0, "Number": number or "", "Format": "Text", "Validity": "NA", "Name": "", "DefaultNumber": ""}


def gammu_parts(text, unicode, ref16):
    """libGammu's own split of a text into concatenated messages."""
    kind = "ConcatenatedTextLong16bit" if ref16 else "ConcatenatedTextLong"
    return gammu.EncodeSMS({"Class": -1, "Unicode": unicode, "Entries": [{"ID": kind, "Buffer": text}]})


class Report:
    def __init__(self):
        self.failures = []
        self.checks = 0

    def expect(self, where, field, got, expected):
        self.checks += 1
        if got != expected:
            self.failures.append(f"{where}: {field}: libGammu says {got!r}, we say {expected!r}")


def check_submit_parts(vector, report):
    name = vector["name"]
    raws = [binascii.unhexlify(h) for h in vector["pdus"]]
    total = len(raws)
    decoded = []
    for index, raw in enumerate(raws):
        where = f"{name} part {index + 1}/{total}"
        try:
            d = gammu.DecodePDU(raw, SMSC=True)
        except gammu.GSMError as error:
            report.failures.append(f"{where}: libGammu cannot decode our PDU: {error}")
            continue
        decoded.append(d)
        smsc_octets = raw[0] + 1
        first_octet = raw[smsc_octets]
        report.expect(where, "type", d["Type"], "Submit")
        report.expect(where, "number", d["Number"], vector["to"])
        report.expect(where, "smsc", d["SMSC"]["Number"], vector["smsc"] or "")
        report.expect(where, "AT+CMGS length", len(raw) - smsc_octets, vector["tpdu_lens"][index])
        report.expect(where, "status report requested", bool(first_octet & 0x20), vector["status_report"])
        report.expect(where, "coding", d["Coding"], CODINGS[vector["encoding"]])
        report.expect(where, "validity (minutes)", validity_minutes(d["SMSC"]["Validity"]), vector["validity_minutes"])
        expected_concat = None
        if total > 1:
            expected_concat = {"reference": vector["reference"], "ref16": vector["ref16"], "seq": index + 1, "total": total}
        report.expect(where, "concat", concat_of(d["UDH"]), expected_concat)
    if len(decoded) != total:
        return
    texts = [clean(d["Text"]) for d in decoded]
    if total > 1:
        linked = gammu.LinkSMS([[d] for d in decoded])
        report.expect(name, "messages after LinkSMS", len(linked), 1)
        whole = gammu.DecodeSMS(linked[0])["Entries"][0]["Buffer"] if linked else None
    else:
        whole = texts[0]
    report.expect(name, "reassembled text", whole, vector["text"])
    theirs = [clean(m["Text"]) for m in gammu_parts(vector["text"], vector["encoding"] == "ucs2", vector["ref16"])]
    report.expect(name, "part texts (libGammu's split vs ours)", theirs, texts)


def as_datetime(text):
    return datetime.datetime.fromisoformat(text)


def check_decode(vector, report):
    name = vector["name"]
    expected = vector["expected"]
    try:
        d = gammu.DecodePDU(binascii.unhexlify(vector["hex"]), SMSC=True)
    except gammu.GSMError as error:
        report.failures.append(f"{name}: libGammu cannot decode it: {error}")
        return
    report.expect(name, "type", d["Type"], TYPES[expected["type"]])
    report.expect(name, "number", d["Number"], expected["number"])
    report.expect(name, "smsc", d["SMSC"]["Number"], expected.get("smsc") or "")
    if "text" in expected:
        report.expect(name, "text", clean(d["Text"]), expected["text"])
    if "data" in expected:
        report.expect(name, "data", binascii.hexlify(d["Text"]).decode().upper(), expected["data"])
    if "concat" in expected:
        report.expect(name, "concat", concat_of(d["UDH"]), expected["concat"])
    if "message_reference" in expected:
        report.expect(name, "message reference", d["MessageReference"], expected["message_reference"])
    if "status" in expected:
        report.expect(name, "TP-ST", d["DeliveryStatus"], expected["status"])
    if "validity_minutes" in expected:
        report.expect(name, "validity (minutes)", validity_minutes(d["SMSC"]["Validity"]), expected["validity_minutes"])
    # libGammu: DateTime is TP-SCTS; for a status report SMSCDateTime is TP-DT.
    for field, key in (("timestamp", "DateTime"), ("sc_timestamp", "DateTime"), ("discharge_time", "SMSCDateTime")):
        if field in expected:
            want = as_datetime(expected[field])
            got = d[key]
            got_text = got.isoformat() if got else None
            same = got is not None and got == want and got.utcoffset() == want.utcoffset()
            report.expect(name, field, got_text, got_text if same else want.isoformat())


def produce(requests):
    out = []
    for request in requests:
        unicode, ref16 = request["unicode"], request["ref16"]
        messages = gammu_parts(request["text"], unicode, ref16)
        pdus = []
        for message in messages:
            if request["kind"] == "gammu_submit":
                # libGammu sets TP-SRR when the message type is Status_Report (gammu --report).
                message["Type"] = "Status_Report" if request["status_report"] else "Submit"
                message["Number"] = request["to"]
                message["SMSC"] = smsc_block(None)
                message["SMSC"]["Validity"] = request.get("validity") or "NA"
                layout = "Submit"
            elif request["kind"] == "gammu_deliver":
                message["Type"] = "Deliver"
                message["Number"] = request["from"]
                message["SMSC"] = smsc_block(request.get("smsc"))
                message["DateTime"] = datetime.datetime(2021, 3, 4, 5, 6, 7)
                layout = "Deliver"
            else:
                raise ValueError(f"unknown request kind {request['kind']!r}")
            pdus.append(gammu.EncodePDU(message, layout))
        parts = []
        for raw in pdus:
            d = gammu.DecodePDU(raw, SMSC=True)
            parts.append({
                "number": d["Number"],
                "smsc": d["SMSC"]["Number"],
                "text": clean(d["Text"]),
                "concat": concat_of(d["UDH"]),
                "timestamp": d["DateTime"].isoformat() if request["kind"] == "gammu_deliver" else None,
            })
        out.append({"name": request["name"], "pdus": [binascii.hexlify(p).decode().upper() for p in pdus], "parts": parts})
    return out


def decode(pdus):
    parts, decoded = [], []
    for index, text in enumerate(pdus):
        raw = binascii.unhexlify(text)
        try:
            d = gammu.DecodePDU(raw, SMSC=True)
        except gammu.GSMError as error:
            raise ValueError(f"PDU {index + 1} ({text}): libGammu cannot decode it: {error}")
        smsc_octets = raw[0] + 1
        body = d["Text"]
        parts.append({
            "type": d["Type"],
            "number": d["Number"],
            "text": clean(body) if isinstance(body, str) else binascii.hexlify(body).decode().upper(),
            "coding": d["Coding"],
            "status_report": bool(raw[smsc_octets] & 0x20),
            "message_reference": d["MessageReference"],
            "concat": concat_of(d["UDH"]),
            "tpdu_len": len(raw) - smsc_octets,
        })
        decoded.append(d)
    messages = []
    for group in gammu.LinkSMS([[d] for d in decoded]):
        if len(group) > 1:
            text = gammu.DecodeSMS(group)["Entries"][0]["Buffer"]
        else:
            text = clean(group[0]["Text"])
        messages.append({"number": group[0]["Number"], "text": text, "parts": len(group)})
    return {"parts": parts, "messages": messages}


def main():
    try:
        data = json.load(sys.stdin)
    except json.JSONDecodeError as error:
        print(f"bad JSON on stdin: {error}", file=sys.stderr)
        return 2
    if sys.argv[1:] == ["--produce"]:
        json.dump(produce(data), sys.stdout, ensure_ascii=False)
        return 0
    if sys.argv[1:] == ["--decode"]:
        try:
            json.dump(decode(data), sys.stdout, ensure_ascii=False)
        except ValueError as error:
            print(error)
            return 1
        return 0
    if sys.argv[1:]:
        print(__doc__, file=sys.stderr)
        return 2
    report = Report()
    for vector in data:
        if vector["kind"] == "submit_parts":
            check_submit_parts(vector, report)
        elif vector["kind"] == "decode":
            check_decode(vector, report)
        else:
            print(f"unknown vector kind {vector['kind']!r}", file=sys.stderr)
            return 2
    for failure in report.failures:
        print(f"MISMATCH {failure}")
    print(f"gammu oracle (libGammu {gammu.Version()[0]}): {len(data)} vectors, {report.checks} checks, "
          f"{len(report.failures)} mismatches")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
