#!/usr/bin/env bash
# deploy/k8s/forge.yaml without a cluster: the YAML parses (Debian's python3-yaml), the
# objects are wired to each other (selectors, Services, ConfigMap, HPA target, probes on
# /health), HAProxy accepts the ConfigMap's configuration, and its routing rules are the ones
# deploy/haproxy.cfg.in tests with deploy/cluster.sh.
source "$(dirname "$0")/../lib.sh"
/usr/bin/python3 - deploy/k8s/forge.yaml "$T_TMP/haproxy.cfg" >"$T_TMP/k8s.out" 2>&1 <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
def ok(desc, cond):
    print(("ok   " if cond else "FAIL ") + desc)
dep = by[("Deployment", "forge")]
pod = dep["spec"]["template"]
c = pod["spec"]["containers"][0]
ok("Deployment forge: its selector matches its pods", dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items())
ok("Deployment forge: runs forge serve on 0.0.0.0:8080", c["args"][:5] == ["serve", "--host", "0.0.0.0", "--port", "8080"])
ok("Deployment forge: readiness on /health", c["readinessProbe"]["httpGet"]["path"] == "/health")
ok("Deployment forge: drain time above --shutdown-timeout", pod["spec"]["terminationGracePeriodSeconds"] >
   int(c["args"][c["args"].index("--shutdown-timeout") + 1]))
rep = by[("Service", "forge-replicas")]
ok("Service forge-replicas: headless, selects the replicas", rep["spec"]["clusterIP"] == "None" and
   rep["spec"]["selector"].items() <= pod["metadata"]["labels"].items())
bal = by[("Deployment", "forge-balancer")]
ok("the balancer mounts the ConfigMap", bal["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == "forge-haproxy")
svc = by[("Service", "forge")]
ok("Service forge: selects the balancer", svc["spec"]["selector"].items() <= bal["spec"]["template"]["metadata"]["labels"].items())
hpa = by[("HorizontalPodAutoscaler", "forge")]
ok("HPA: scales Deployment forge on forge_num_requests_waiting", hpa["spec"]["scaleTargetRef"]["name"] == "forge" and
   hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == "forge_num_requests_waiting")
cfg = by[("ConfigMap", "forge-haproxy")]["data"]["haproxy.cfg"]
ok("the ConfigMap's backend finds the replicas by the headless Service", "forge-replicas.default.svc.cluster.local:8080" in cfg)
open(sys.argv[2], "w").write(cfg)
rules = lambda text: [l.strip() for l in text.splitlines() if l.strip().split(" ")[0] in
                      ("http-request", "balance", "hash-type", "retry-on", "http-check") or l.strip().startswith("option httpchk")]
ok("the ConfigMap routes as deploy/haproxy.cfg.in does", rules(cfg) == rules(open("deploy/haproxy.cfg.in").read()))
PY
cat "$T_TMP/k8s.out"
T_PASSED=$((T_PASSED + $(grep -c '^ok ' "$T_TMP/k8s.out"))); T_FAILED=$((T_FAILED + $(grep -c '^FAIL' "$T_TMP/k8s.out")))
[ -s "$T_TMP/k8s.out" ] || T_FAILED=$((T_FAILED + 1))
if command -v haproxy >/dev/null; then
  check "haproxy -c accepts the ConfigMap's configuration" haproxy -c -q -f "$T_TMP/haproxy.cfg"
else
  check "haproxy is installed" false
fi
finish
