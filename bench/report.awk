# Turns bench/gate.sh's raw results into the markdown tables (POSIX awk; mawk is enough).
# File 1 (wrk runs):  phase target rps p50_us p99_us rss_kb errors cpu_us_per_request
#                     kernel_cpu_us_per_request (one row per round)
# File 2 (streams):   target completed peak_open fb_p50_ms fb_p99_ms hwm_kb rss_at_peak_kb errors

function median(list,    n, v, i, j, t) {
    n = split(list, v, " ")
    if (n == 0) return ""
    for (i = 2; i <= n; i++) {
        t = v[i] + 0
        for (j = i - 1; j >= 1 && v[j] + 0 > t; j--) v[j + 1] = v[j]
        v[j + 1] = t
    }
    if (n % 2) return v[(n + 1) / 2] + 0
    return (v[n / 2] + v[n / 2 + 1]) / 2
}
function ms(us) { return sprintf("%.2f", us / 1000) }
function mb(kb) { return kb > 0 ? sprintf("%.1f", kb / 1024) : "–" }
function thousands(x,    s, out) {
    s = sprintf("%d", x + 0.5)
    out = ""
    while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
    return s out
}
function num(x) { return x == "-" ? "–" : sprintf("%.1f", x) }
function yes(ok) { return ok ? "yes" : "**no**" }

FILENAME == ARGV[1] {
    k = $1 SUBSEP $2
    rps[k] = rps[k] " " $3; p50[k] = p50[k] " " $4; p99[k] = p99[k] " " $5
    rss[k] = rss[k] " " $6; errs[k] += $7
    if ($8 != "-" && $8 != "") cpu[k] = cpu[k] " " $8
    if ($9 != "-" && $9 != "") kcpu[k] = kcpu[k] " " $9
    if (!(($1) in seenphase)) { seenphase[$1] = 1; phases[++nphases] = $1 }
    if (!(($2) in seentarget)) { seentarget[$2] = 1; targets[++ntargets] = $2 }
    next
}
{
    st[$1] = 1; s_done[$1] = $2; s_peak[$1] = $3; s_fb50[$1] = $4; s_fb99[$1] = $5
    s_hwm[$1] = $6; s_rsspeak[$1] = $7; s_err[$1] = $8
}

END {
    label["chat"] = "POST /api/chat, JSON answer, " conns " connections, saturating"
    label["paced"] = "POST /api/chat, JSON answer, " pconns " connections, " pdelay " ms pause between requests"
    label["stream"] = "POST /api/chat, NDJSON stream (4 lines), " conns " connections, saturating"
    print "| Load | Path | Requests/s | p50 (ms) | p99 (ms) | p99 added over direct (ms) | Peak RSS of the proxy (MB) | Proxy CPU per request (µs) | of which in the kernel (µs) |"
    print "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    for (i = 1; i <= nphases; i++) {
        ph = phases[i]
        d99 = median(p99[ph SUBSEP "direct"])
        for (j = 1; j <= ntargets; j++) {
            t = targets[j]; k = ph SUBSEP t
            if (!(k in rps)) continue
            R[k] = median(rps[k]); P99[k] = median(p99[k])
            added = (t == "direct" || d99 == "") ? "–" : sprintf("%+.2f", (P99[k] - d99) / 1000)
            ADD[k] = (t == "direct" || d99 == "") ? "" : (P99[k] - d99) / 1000
            note = errs[k] > 0 ? " (" errs[k] " socket errors)" : ""
            C[k] = (k in cpu) ? median(cpu[k]) : ""
            KC[k] = (k in kcpu) ? median(kcpu[k]) : ""
            printf "| %s | %s | %s%s | %s | %s | %s | %s | %s | %s |\n", (j == 1 ? label[ph] : ""), t, \
                thousands(R[k]), note, ms(median(p50[k])), ms(P99[k]), added, mb(median(rss[k])), \
                (C[k] == "" ? "–" : num(C[k])), (KC[k] == "" ? "–" : num(KC[k]))
        }
    }
    print ""
    print "| " streams_total " concurrent NDJSON streams (" streams_shape ") | Completed | Most open at once | First chunk p50 / p99 (ms) | Peak RSS of the proxy (MB) | Errors |"
    print "|---|---:|---:|---:|---:|---|"
    for (j = 1; j <= ntargets; j++) {
        t = targets[j]
        if (!(t in st)) continue
        printf "| %s | %s / %s | %s | %s / %s | %s | %s |\n", t, s_done[t], streams_total, s_peak[t], \
            num(s_fb50[t]), num(s_fb99[t]), mb(s_hwm[t]), (s_err[t] == "-" ? "none" : s_err[t])
    }
    print ""
    print "| Target | Measured | Goal | Met |"
    print "|---|---:|---:|---|"
    for (i = 1; i <= nphases; i++) {
        ph = phases[i]
        kc = ph SUBSEP "corral"; kn = ph SUBSEP "nginx"
        if ((ph != "paced") && (kc in R) && (kn in R) && R[kn] > 0) {
            ratio = R[kc] / R[kn]
            printf "| corral / nginx throughput (%s) | %.2f× | ≥ 1.00× | %s |\n", ph, ratio, yes(ratio >= 1)
        }
        kf = ph SUBSEP "floor"
        if ((ph != "paced") && C[kc] != "" && C[kf] != "" && C[kc] > 0)
            printf "| floor / corral CPU per request (%s; informative: what corral's own layers cost over a bare relay on the same runtime) | %.2f× | – | – |\n", ph, C[kf] / C[kc]
        if ((ph != "paced") && C[kc] != "" && C[kn] != "" && C[kc] > 0) {
            printf "| nginx / corral CPU per request (%s; informative: 1.00× = as frugal as nginx) | %.2f× | – | – |\n", ph, C[kn] / C[kc]
            if (KC[kc] != "" && KC[kn] != "" && C[kc] - KC[kc] > 0)
                printf "| nginx / corral CPU per request outside the kernel (%s; informative) | %.2f× | – | – |\n", ph, (C[kn] - KC[kn]) / (C[kc] - KC[kc])
        }
    }
    for (i = 1; i <= nphases; i++) {
        ph = phases[i]
        for (j = 1; j <= ntargets; j++) {
            t = targets[j]; k = ph SUBSEP t
            if (t == "direct" || ADD[k] == "") continue
            printf "| %s added p99 over direct (%s) | %.2f ms | ≤ 1 ms | %s |\n", t, ph, ADD[k], yes(ADD[k] <= 1)
        }
    }
    for (j = 1; j <= ntargets; j++) {
        t = targets[j]
        if (t == "direct" || !(t in st)) continue
        ok = (s_hwm[t] > 0 && s_hwm[t] <= 50 * 1024 && s_done[t] == streams_total && s_peak[t] == streams_total)
        printf "| %s peak RSS, %s concurrent streams | %s MB | ≤ 50 MB | %s |\n", t, streams_total, mb(s_hwm[t]), yes(ok)
    }
}
