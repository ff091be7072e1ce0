#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/: small, real-shaped inputs taken from
the repository's unit and integration test inputs and fixtures, a few written by hand, GGUF and
safetensors files built here byte by byte, and CSRs made with `openssl req`.

  python3 tests/fuzz/make_corpus.py          # rewrites every seed (CSRs get new keys)

libFuzzer adds what it finds when run with -merge; those files are named by their SHA-1 and are
kept. Seeds written here have readable names."""
import json
import os
import pathlib
import struct
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent
REPO = ROOT.parent.parent
CORPUS = ROOT / "corpus"
PENDING = ROOT / "pending"  # reproducers of open bugs: not replayed


def put(target, name, data, base=None):
    d = (base or CORPUS) / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    assert len(data) <= 64 * 1024, (target, name)
    (d / name).write_bytes(data)


def fixture(name):
    return (REPO / "tests/fixtures/telemetry" / name).read_text()


# ---------------------------------------------------------------------------------------------
# HTTP requests and routes (tests/unit/common/http_test.cpp, tests/integration/limits_test.cpp,
# the routes of server/api, and the reproductions of issue 9).
def http():
    reqs = {
        "get_health": "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n\r\n",
        "get_events_query": "GET /v1/events?after=10&limit=5&stream=job%2Fjob-1&type=job.started"
                            " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok_1.abc\r\n\r\n",
        "post_tokens": "POST /v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 17\r\n\r\n{\"role\":\"viewer\"}",
        "post_encoded_path": "POST /v1/%74okens HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        "chunked": "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n",
        "logs_tail_crlf": "GET /v1/jobs/job-1/logs?tail=10%0D%0APOST%20/v1/jobs%20HTTP/1.1 HTTP/1.1"
                          "\r\nHost: x\r\n\r\n",
        "delete_token": "DELETE /v1/tokens/enr_0011 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "http10_keepalive": "GET /v1/hosts/host-1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "sse_last_event": "GET /v1/events/stream?after=3 HTTP/1.1\r\nHost: x\r\n"
                          "Last-Event-ID: 42\r\nAccept: text/event-stream\r\n\r\n",
        "pipelined": "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/pki/ca HTTP/1.1\r\n\r\n",
        "plus_and_percent": "GET /v1/placements?config=%7B%22hidden_size%22%3A8%7D&context=4096"
                            "&tp=2&x+y=a+b&%zz=1&&= HTTP/1.1\r\nHost: x\r\n\r\n",
        "dup_content_length": "POST /v1/plan HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n"
                              "\r\n{}x",
        "obs_fold": "GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n",
    }
    for k, v in reqs.items():
        put("http_request", k, v)
    routes = [
        ("GET", "/v1/health"), ("POST", "/v1/tokens"), ("GET", "/v1/tokens"),
        ("DELETE", "/v1/tokens/tok_1"), ("GET", "/v1/events?after=1"),
        ("GET", "/v1/events/stream"), ("GET", "/v1/ledger/verify"),
        ("GET", "/v1/ledger/checkpoints?limit=2"), ("POST", "/v1/plan"), ("GET", "/v1/hosts"),
        ("GET", "/v1/hosts/host-1"), ("GET", "/v1/pki/ca"), ("POST", "/v1/enroll-tokens"),
        ("POST", "/v1/enroll"), ("POST", "/v1/pki/renew"), ("POST", "/v1/hosts/h1/revoke"),
        ("GET", "/v1/gpus"), ("GET", "/v1/telemetry?host=h&from=0"), ("GET", "/v1/usage"),
        ("POST", "/v1/jobs"), ("GET", "/v1/jobs/job-1/logs?tail=5&follow=1"),
        ("DELETE", "/v1/jobs/job-1"), ("GET", "/v1/placements?context=8192"),
        ("GET", "/v1/collector"), ("PUT", "/v1/tokens"), ("GET", "//v1///health/"),
        ("POST", "/v1/%6Aobs"), ("GET", "/v1/hosts/%2F..%2F"), ("OPTIONS", "*"),
        ("GET", "http://example/v1/health"),
    ]
    for i, (m, t) in enumerate(routes):
        put("router", f"route_{i:02d}", f"{m}\n{t}")


# ---------------------------------------------------------------------------------------------
# JSON bodies (tests/unit/ledger/api_test.cpp, tests/integration/bad_json_test.cpp,
# tests/integration/pki/enrollment_test.cpp, tests/integration/fleet/job_test.cpp).
def bodies():
    tokens = [
        '{"role":"viewer","ttl_s":60,"note":"ci"}', '{"role":"admin"}', '{"role":"operator"}',
        '{"role":', '[1,2]', '{"role":7}', '{"role":"root"}', '{"note":"x"}',
        '{"role":"viewer","ttl":5}', '{"role":"viewer","ttl_s":0}', '{"role":"viewer","ttl_s":"5"}',
        '{"role":"viewer","ttl_s":1.5}', '{"role":"viewer","ttl_s":99999999999}',
        '{"role":"viewer","role":"admin"}', '{"role":"viewer"} x', '{"role":"viewer","note":["a"]}',
        '{"ttl_s":600,"host_hint":"gpu-01"}', '{}', '{"host_hint":7}',
        '{"role":"viewer","note":"\\u0000\\ud800"}',
    ]
    for i, b in enumerate(tokens):
        put("api_tokens", f"body_{i:02d}", b)

    platform = {"os": "Debian GNU/Linux 12", "kernel": "6.1.0-18-amd64", "cpu": "AMD EPYC 9654",
                "cpu_cores": 192, "memory_bytes": 1622959886336, "hostname": "gpu-01",
                "agent_version": "0.1.0",
                "gpus": [{"uuid": "GPU-5f1bd2c4-0c53-8a2e-1d3b-1e0b5bfbb2a1",
                          "name": "NVIDIA H100 80GB HBM3", "memory_total_bytes": 85520809984}]}
    enroll = [
        {"token": "$TOKEN", "csr": "$CSR", "name": "gpu-01", "advertise": "10.0.0.5:9443",
         "platform": platform},
        {"token": "$TOKEN", "csr": "$CSR"},
        {"token": "$TOKEN", "csr": "$CSR", "advertise": "gpu-01.example.org:9443"},
        {"token": "$TOKEN", "csr": "$CSR", "advertise": "[::1]:9443", "name": "local"},
        {"token": "enr_0000.wrong", "csr": "$CSR"},
        {"token": "$TOKEN", "csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"},
        {"token": "$TOKEN", "csr": "$CSR", "platform": {"os": "x", "extra": 1}},
        {"token": "$TOKEN", "csr": "$CSR", "name": ""},
        {"token": "no-dot", "csr": "x"},
    ]
    for i, b in enumerate(enroll):
        put("api_enroll", f"body_{i:02d}", json.dumps(b))
    # The SAN injection through "advertise" (issue 9, item 1): kept out of the replayed corpus
    # until the fix lands, then moved to crashes/api_enroll/.
    put("api_enroll", "san_injection", json.dumps(
        {"token": "$TOKEN", "csr": "$CSR",
         "advertise": "x,URI:hwledger://admin/pwned,URI:hwledger://server:1"}), base=PENDING)
    # A newline in "advertise" swallows the host URI into one DNS SAN (same cause).
    put("api_enroll", "newline_swallows_uri", json.dumps(
        {"token": "$TOKEN", "csr": "$CSR", "advertise": "a\nb:1"}), base=PENDING)
    put("api_enroll", "body_dup_token", '{"token":"$TOKEN","token":"$TOKEN","csr":"$CSR"}')

    jobs = [
        {"name": "llama", "command": ["vllm", "serve", "meta-llama/Llama-3.1-8B"], "gpus": 1,
         "gpu_memory_bytes": 40000000000, "port": 8000, "ready_path": "/health",
         "max_runtime_s": 3600, "env": {"HF_HOME": "/cache"}},
        {"command": ["sleep", "60"]},
        {"command": ["sh", "-c", "setsid sleep 777 & sleep 600"], "host": "gpu-01"},
        {"command": ["x"], "env": {"A=B": "c"}},
        {"command": []}, {"command": "ls"}, {"command": ["x"], "gpus": 65},
        {"command": ["x"], "port": 0}, {"command": ["x"], "ready_path": "health", "port": 80},
        {"command": ["x"], "env": {"A": 1}}, {"command": ["x"], "unknown": True},
        {"command": ["x"], "max_runtime_s": -1}, {"command": ["x"], "gpu_memory_bytes": 0},
    ]
    for i, b in enumerate(jobs):
        put("api_jobs", f"body_{i:02d}", json.dumps(b))

    # Agent-side job specs: tests/unit/jobs/job_spec_test.cpp.
    specs = [
        '{"id":"llama-1","command":["vllm","serve"],"gpus":["GPU-9d3c1a77-4e1f-2b6a-8c0d-77aa01c3e9f2"]}',
        '{"id":"a","command":["x"],"env":{"HF_HOME":"/cache"},"gpus":[],"working_dir":"runs/a",'
        '"ready_url":"http://127.0.0.1:8000/health","ready_timeout_s":30,"max_runtime_s":3600.5,'
        '"grace_s":2.25}',
        '{"id":"b","command":["/bin/true"],"working_dir":"/srv/jobs/b/"}',
        '{"id":"c","command":["x"],"ready_url":"http://[::1]:9/ready?x=1"}',
        '{"id":"d","command":["x"],"ready_url":"http://localhost:65535"}',
        '[1,2]', '{"command":["x"]}', '{"id":"../etc","command":["x"]}',
        '{"id":".hidden","command":["x"]}', '{"id":"a"}', '{"id":"a","command":[]}',
        '{"id":"a","command":"ls -l"}', '{"id":"a","command":["ls",7]}', '{"id":"a","command":[""]}',
        '{"id":"a","command":["x"],"gpus":["GPU-zzzz"]}',
        '{"id":"a","command":["x"],"gpus":["GPU-5f1bd2c4-0c53-8a2e-1d3b-1e0b5bfbb2a1","GPU-5f1bd2c4-0c53-8a2e-1d3b-1e0b5bfbb2a1"]}',
        '{"id":"a","command":["x"],"working_dir":"../../etc"}',
        '{"id":"a","command":["x"],"working_dir":"a/../../b"}',
        '{"id":"a","command":["x"],"env":{"A=B":"c"}}', '{"id":"a","command":["x"],"user":"root"}',
        '{"id":"a","command":["x"],"grace_s":-1}', '{"id":"a","command":["x"],"max_runtime_s":1e12}',
        '{"id":"a","command":["x"],"ready_url":"http://10.0.0.5:80/"}',
        '{"id":"a","command":["x"],"ready_url":"http://127.0.0.1:99999/"}',
        '{"id":"a","command":["x"],"ready_url":"http://127.0.0.1:80/a b"}',
        '{"id":"a","command":["x\\u0000y"]}',
    ]
    for i, b in enumerate(specs):
        put("job_spec", f"spec_{i:02d}", b)


# ---------------------------------------------------------------------------------------------
# Model configs, written by hand in the shapes of public config.json files.
LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
         "intermediate_size": 14336, "num_attention_heads": 32, "num_hidden_layers": 32,
         "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
         "tie_word_embeddings": False, "torch_dtype": "bfloat16", "head_dim": 128}
MOE = {"model_type": "qwen3_moe", "hidden_size": 2048, "intermediate_size": 6144,
       "moe_intermediate_size": 768, "num_experts": 128, "num_experts_per_tok": 8,
       "num_attention_heads": 32, "num_key_value_heads": 4, "num_hidden_layers": 48,
       "head_dim": 128, "vocab_size": 151936, "max_position_embeddings": 40960,
       "torch_dtype": "bfloat16", "tie_word_embeddings": False}
GEMMA = {"model_type": "gemma3_text", "hidden_size": 2560, "intermediate_size": 10240,
         "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
         "num_hidden_layers": 34, "sliding_window": 1024, "sliding_window_pattern": 6,
         "vocab_size": 262208, "max_position_embeddings": 131072, "torch_dtype": "bfloat16"}
MLA = {"model_type": "deepseek_v3", "hidden_size": 7168, "intermediate_size": 18432,
       "moe_intermediate_size": 2048, "n_routed_experts": 256, "n_shared_experts": 1,
       "num_experts_per_tok": 8, "first_k_dense_replace": 3, "num_attention_heads": 128,
       "num_key_value_heads": 128, "num_hidden_layers": 61, "kv_lora_rank": 512,
       "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
       "vocab_size": 129280, "max_position_embeddings": 163840, "num_nextn_predict_layers": 1,
       "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]}}
HYBRID = {"model_type": "jamba", "hidden_size": 4096, "intermediate_size": 14336,
          "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 32,
          "attn_layer_period": 8, "attn_layer_offset": 4, "expert_layer_period": 2,
          "expert_layer_offset": 1, "num_experts": 16, "num_experts_per_tok": 2,
          "mamba_d_state": 16, "mamba_d_conv": 4, "mamba_expand": 2, "mamba_dt_rank": 256,
          "vocab_size": 65536, "max_position_embeddings": 262144}
VLM = {"model_type": "llava", "text_config": dict(LLAMA), "vision_config": {"hidden_size": 1024}}
GPT2 = {"model_type": "gpt2", "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024,
        "vocab_size": 50257}


def models():
    for name, cfg in [("llama", LLAMA), ("qwen3_moe", MOE), ("gemma3", GEMMA),
                      ("deepseek_v3", MLA), ("jamba", HYBRID), ("llava", VLM), ("gpt2", GPT2)]:
        put("hf_config", name + ".json", json.dumps(cfg, indent=1))
    put("hf_config", "nan_inf.json", '{"model_type":"llama","hidden_size":NaN,"rope_theta":Infinity,'
                                     '"num_hidden_layers":2,"num_attention_heads":1}')
    put("hf_config", "zeros.json", '{"model_type":"llama","hidden_size":0,"num_attention_heads":0,'
                                   '"num_hidden_layers":1,"num_key_value_heads":0}')
    put("hf_config", "huge.json", '{"model_type":"llama","hidden_size":4294967295,'
                                  '"num_attention_heads":1,"num_hidden_layers":4294967295,'
                                  '"vocab_size":18446744073709551615}')
    plans = [
        {"model": LLAMA, "context": 8192},
        {"model": MOE, "context": 32768, "batch": 4, "weights": "fp8", "kv": "fp8", "tp": 2,
         "gpu_mem": "80GiB", "per_layer": True},
        {"model": GEMMA, "context": 131072, "gpu_mem_bytes": 25769803776, "kv": "q8_0"},
        {"model": MLA, "context": 4096, "tp": 8, "prefill_chunk_tokens": 8192,
         "activation_bytes": 1000000000, "overhead_bytes": 2000000000},
        {"model": HYBRID, "context": 1000, "state_dtype": "fp32"},
        {"model": {"hidden_size": 1}, "context": 5}, {"model": []}, {"context": 1},
        {"model": LLAMA, "context": 8192, "gpu_mem": "1e99"},
        {"model": LLAMA, "context": 18446744073709551615, "batch": 18446744073709551615},
    ]
    for i, p in enumerate(plans):
        put("api_plan", f"plan_{i:02d}", json.dumps(p))


# ---------------------------------------------------------------------------------------------
# GGUF (tests/unit/planner/gguf_test.cpp builds its files with GgufWriter; same layout here).
def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_kv(key, t, value):
    out = gguf_string(key) + struct.pack("<I", t)
    if t == 4:
        out += struct.pack("<I", value)
    elif t == 8:
        out += gguf_string(value)
    elif t == 6:
        out += struct.pack("<f", value)
    elif t == 9:
        et, items = value
        out += struct.pack("<IQ", et, len(items))
        for it in items:
            out += struct.pack("<i", it) if et == 5 else gguf_string(it)
    return out


def gguf_file(kvs, tensors, version=3, alignment=32):
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for kv in kvs:
        out += gguf_kv(*kv)
    offset = 0
    data_sizes = []
    for name, shape, ggml_type, nbytes in tensors:
        out += gguf_string(name) + struct.pack("<I", len(shape))
        for d in shape:
            out += struct.pack("<Q", d)
        out += struct.pack("<IQ", ggml_type, offset)
        offset += (nbytes + alignment - 1) // alignment * alignment
        data_sizes.append(nbytes)
    out += b"\0" * ((-len(out)) % alignment)
    return out + b"\0" * offset


def gguf():
    arch = "llama"
    e, f, v = 16, 32, 16
    kvs = [("general.architecture", 8, arch), ("general.name", 8, "tiny"),
           (f"{arch}.block_count", 4, 2), (f"{arch}.embedding_length", 4, e),
           (f"{arch}.feed_forward_length", 4, f), (f"{arch}.attention.head_count", 4, 4),
           (f"{arch}.attention.head_count_kv", 4, 2), (f"{arch}.context_length", 4, 2048),
           (f"{arch}.rope.freq_base", 6, 10000.0)]
    tensors = [("token_embd.weight", [e, v], 1, e * v * 2)]
    for b in range(2):
        for t, shape in [("attn_q", [e, e]), ("attn_k", [e, e // 2]), ("attn_v", [e, e // 2]),
                         ("attn_output", [e, e]), ("ffn_gate", [e, f]),
                         ("ffn_up", [e, f]), ("ffn_down", [f, e])]:
            tensors.append((f"blk.{b}.{t}.weight", shape, 1, shape[0] * shape[1] * 2))
        tensors.append((f"blk.{b}.attn_norm.weight", [e], 0, e * 4))
    tensors.append(("output_norm.weight", [e], 0, e * 4))
    tensors.append(("output.weight", [32, v], 8, 32 * v // 32 * 34))  # Q8_0 blocks
    put("gguf", "tiny_llama_v3.gguf", gguf_file(kvs, tensors))
    put("gguf", "tiny_llama_v2.gguf", gguf_file(kvs, tensors, version=2))
    tok = kvs + [("tokenizer.ggml.tokens", 9, (8, ["<s>", "</s>", "a", "b"])),
                 ("tokenizer.ggml.token_type", 9, (5, [1, 1, 0, 0]))]
    put("gguf", "with_arrays.gguf", gguf_file(tok, tensors[:3]))
    put("gguf", "header_only.gguf", b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
    put("gguf", "truncated.gguf", gguf_file(kvs, tensors)[:300])
    moe = [("general.architecture", 8, "qwen3moe"), ("qwen3moe.block_count", 4, 1),
           ("qwen3moe.embedding_length", 4, 32), ("qwen3moe.expert_count", 4, 4),
           ("qwen3moe.expert_used_count", 4, 2), ("qwen3moe.attention.head_count", 4, 2),
           ("qwen3moe.attention.head_count_kv", 4, 1),
           ("qwen3moe.expert_feed_forward_length", 4, 16)]
    mt = [("token_embd.weight", [32, 16], 1, 32 * 16 * 2),
          ("blk.0.ffn_gate_exps.weight", [32, 16, 4], 1, 32 * 16 * 4 * 2),
          ("blk.0.ffn_gate_inp.weight", [32, 4], 0, 32 * 4 * 4),
          ("blk.0.attn_q.weight", [32, 32], 1, 32 * 32 * 2)]
    put("gguf", "tiny_moe.gguf", gguf_file(moe, mt))


def safetensors_file(header, data_len):
    h = json.dumps(header).encode()
    h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + b"\0" * data_len


def safetensors():
    hdr = {"__metadata__": {"format": "pt"},
           "model.embed_tokens.weight": {"dtype": "BF16", "shape": [32, 16], "data_offsets": [0, 1024]},
           "model.layers.0.self_attn.q_proj.weight": {"dtype": "BF16", "shape": [16, 16], "data_offsets": [1024, 1536]},
           "model.norm.weight": {"dtype": "F32", "shape": [16], "data_offsets": [1536, 1600]},
           "lm_head.weight": {"dtype": "F8_E4M3", "shape": [32, 16], "data_offsets": [1600, 2112]}}
    put("safetensors", "small.safetensors", safetensors_file(hdr, 2112))
    put("safetensors", "overlap.safetensors", safetensors_file(
        {"a": {"dtype": "F16", "shape": [4], "data_offsets": [0, 8]},
         "b": {"dtype": "F16", "shape": [4], "data_offsets": [4, 12]}}, 12))
    put("safetensors", "fp4.safetensors", safetensors_file(
        {"w": {"dtype": "F4", "shape": [2, 3], "data_offsets": [0, 3]},
         "s": {"dtype": "U8", "shape": [], "data_offsets": [3, 4]}}, 4))
    put("safetensors", "beyond_end.safetensors", safetensors_file(
        {"a": {"dtype": "F32", "shape": [1024], "data_offsets": [0, 4096]}}, 16))
    put("safetensors", "bad_len", struct.pack("<Q", 1 << 60) + b"{}")


# ---------------------------------------------------------------------------------------------
# Telemetry tools: the nvidia-smi CSV fixtures of tests/fixtures/telemetry, the inline outputs of
# tests/unit/probes, and nvidia-smi -q -x / rocm-smi --json documents written by hand in the
# documented shapes.
def probes():
    q = fixture("nvidia-h100-query-gpu.csv")
    idle = fixture("nvidia-h100-query-gpu-idle.csv")
    apps = fixture("nvidia-h100-compute-apps.csv")
    put("nvidia_smi_csv", "h100_header", b"\x00" + (q + "\f" + apps).encode())
    put("nvidia_smi_csv", "h100_idle_header", b"\x00" + idle.encode())
    noheader = ("0, GPU-aaaa, NVIDIA H100 80GB HBM3, 590.48.01, 81559, 19818, 61263, 100, 11, 59,"
                " 631.95, 700.00, 1980, 2619\n"
                "1, GPU-bbbb, NVIDIA H100 80GB HBM3, 590.48.01, 81559, [N/A], [N/A], "
                "[Not Supported], [Not Supported], 41, [N/A], 700.00, 345, 2619\n")
    put("nvidia_smi_csv", "noheader", b"\x01" + (noheader + "\fGPU-aaaa, 4242, /usr/bin/python3,"
                                                  " 19000\nGPU-1, 42, /opt/app, with comma, 100\n").encode())
    put("nvidia_smi_csv", "list_mig", b"\x02" + (
        "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-5f1bd2c4-0c53-8a2e-1d3b-1e0b5bfbb2a1)\n"
        "  MIG 3g.40gb     Device  0: (UUID: MIG-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d)\n"
        "  MIG 1g.10gb     Device  1: (UUID: MIG-1a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d)\n"
        "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-9d3c1a77-4e1f-2b6a-8c0d-77aa01c3e9f2)\n").encode())
    put("nvidia_smi_csv", "quote_name", b"\x00" + (
        'index, uuid, name, memory.total [MiB]\n0, GPU-a"b, Evil"} 1\nx{a="b, 1 MiB\n').encode())

    xml = """<?xml version="1.0" ?>
<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">
<nvidia_smi_log>
	<timestamp>Tue Mar  5 10:00:00 2024</timestamp>
	<driver_version>550.54.14</driver_version>
	<cuda_version>12.4</cuda_version>
	<attached_gpus>1</attached_gpus>
	<gpu id="00000000:18:00.0">
		<product_name>NVIDIA H100 80GB HBM3</product_name>
		<uuid>GPU-5f1bd2c4-0c53-8a2e-1d3b-1e0b5bfbb2a1</uuid>
		<minor_number>0</minor_number>
		<mig_mode><current_mode>Enabled</current_mode><pending_mode>Enabled</pending_mode></mig_mode>
		<mig_devices>
			<mig_device>
				<index>0</index>
				<gpu_instance_id>1</gpu_instance_id>
				<compute_instance_id>0</compute_instance_id>
				<device_attributes><shared><multiprocessor_count>60</multiprocessor_count></shared></device_attributes>
				<fb_memory_usage><total>40192 MiB</total><reserved>0 MiB</reserved><used>12 MiB</used><free>40180 MiB</free></fb_memory_usage>
			</mig_device>
		</mig_devices>
		<pci><pci_bus_id>00000000:18:00.0</pci_bus_id></pci>
		<fb_memory_usage><total>81559 MiB</total><reserved>328 MiB</reserved><used>19818 MiB</used><free>61263 MiB</free></fb_memory_usage>
		<utilization><gpu_util>100 %</gpu_util><memory_util>11 %</memory_util></utilization>
		<temperature><gpu_temp>59 C</gpu_temp></temperature>
		<gpu_power_readings><power_draw>631.95 W</power_draw><current_power_limit>700.00 W</current_power_limit></gpu_power_readings>
		<clocks><graphics_clock>1980 MHz</graphics_clock><sm_clock>1980 MHz</sm_clock><mem_clock>2619 MHz</mem_clock></clocks>
		<processes>
			<process_info>
				<gpu_instance_id>N/A</gpu_instance_id>
				<compute_instance_id>N/A</compute_instance_id>
				<pid>4242</pid>
				<type>C</type>
				<process_name>/usr/bin/python3 -m vllm.entrypoints.openai.api_server</process_name>
				<used_memory>19000 MiB</used_memory>
			</process_info>
		</processes>
	</gpu>
</nvidia_smi_log>
"""
    put("nvidia_smi_xml", "h100_mig.xml", xml)
    old = xml.replace("gpu_power_readings", "power_readings").replace("nvsmi_device_v12", "nvsmi_device_v11")
    put("nvidia_smi_xml", "v11_power_readings.xml", old)
    put("nvidia_smi_xml", "entities.xml", """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE log SYSTEM "x.dtd" [ <!ENTITY ignored "y"> ]>
<!-- leading comment -->
<log version='2'>
  <gpu id="0000:01:00.0" note="a &amp; b &quot;q&quot;">
    <name>A &lt;B&gt; &#65;&#x42; &apos;x&apos;</name>
    <!-- inner comment -->
    <empty/>
    <cdata><![CDATA[<raw> & text]]></cdata>
  </gpu>
  <gpu id="2"><name>second</name></gpu>
</log>
<!-- trailing comment -->
""")
    put("nvidia_smi_xml", "charref.xml", "<a>&#xE9;&#8364;</a>")
    put("nvidia_smi_xml", "bad_crossed.xml", "<a><b></a></b>")

    rocm6 = {"card0": {"Device ID": "0x74a1", "Device Rev": "0x00", "Subsystem ID": "0x74a1",
                       "GUID": "28851", "Unique ID": "0x2ba8c4c1a9d7e3f1",
                       "Card Series": "AMD Instinct MI300X", "Card Model": "0x74a1",
                       "Card Vendor": "Advanced Micro Devices, Inc. [AMD/ATI]", "Card SKU": "M3000100",
                       "Driver version": "6.7.0", "PCI Bus": "0000:0C:00.0",
                       "VRAM Total Memory (B)": "205822885888", "VRAM Total Used Memory (B)": "293126144",
                       "GPU use (%)": "0", "GPU Memory Allocated (VRAM%)": "0",
                       "GPU Memory Read/Write Activity (%)": "0",
                       "Temperature (Sensor edge) (C)": "N/A",
                       "Temperature (Sensor junction) (C)": "38.0",
                       "Temperature (Sensor memory) (C)": "31.0",
                       "Current Socket Graphics Package Power (W)": "127.0",
                       "Max Graphics Package Power (W)": "750.0",
                       "sclk clock speed:": "(132Mhz)", "mclk clock speed:": "(900Mhz)"},
             "system": {"PID2178": "python3, 1, 17179869184, 0, unknown"}}
    put("rocm_smi", "mi300x_rocm6.json", json.dumps(rocm6, indent=4))
    rocm4 = {"card0": {"GPU ID": "0x738c", "Unique ID": "0x4c3b2a1908f7e6d5",
                       "Card series": "Instinct MI100", "Card vendor": "Advanced Micro Devices",
                       "Driver version": "5.4.3", "PCI Bus": "0000:03:00.0",
                       "VRAM Total Memory (B)": "34342961152", "VRAM Total Used Memory (B)": "6750208",
                       "GPU use (%)": "3", "GPU memory use (%)": "0",
                       "Temperature (Sensor edge) (C)": "33.0",
                       "Average Graphics Package Power (W)": "34.0",
                       "Max Graphics Package Power (W)": "290.0",
                       "sclk clock speed:": "(300Mhz)", "mclk clock speed:": "(1200Mhz)"},
             "card1": {"GPU ID": "0x738c", "PCI Bus": "0000:43:00.0"},
             "system": {"Driver version": "5.4.3"}}
    put("rocm_smi", "mi100_rocm4.json", json.dumps(rocm4))
    put("rocm_smi", "empty_card.json", '{"cardX": {}}')
    put("rocm_smi", "quotes.json", json.dumps({"card0": {"Card Series": "x\"} 1\nevil{a=\"1",
                                                         "Unique ID": "\\\n"}}))


# ---------------------------------------------------------------------------------------------
# Outbox: entry payloads as the agent writes them (agent/outbox/include/hwl/outbox/outbox.hpp,
# tests/unit/outbox/outbox_test.cpp), as journals and as GET /v1/outbox pages.
ENTRIES = [
    {"seq": 1, "id": "host-f0f0f0:1", "type": "job.accepted", "time_ms": 1700000000000,
     "data": {"job_id": "job-1a2b3c", "spec": {"id": "job-1a2b3c", "command": ["sleep", "1"]}}},
    {"seq": 2, "id": "host-f0f0f0:2", "type": "job.started", "time_ms": 1700000000100,
     "data": {"job_id": "job-1a2b3c", "pid": 4242, "pgid": 4242}},
    {"seq": 3, "id": "host-f0f0f0:3", "type": "job.ready", "time_ms": 1700000000200,
     "data": {"job_id": "job-1a2b3c"}},
    {"seq": 4, "id": "host-f0f0f0:4", "type": "job.exited", "time_ms": 1700000000300,
     "data": {"job_id": "job-1a2b3c", "exit_code": 0, "log_tail": "done\n"}},
    {"seq": 5, "id": "host-f0f0f0:5", "type": "gpu.inventory", "time_ms": 1700000000400,
     "data": {"gpus": [{"uuid": "GPU-5f1bd2c4-0c53-8a2e-1d3b-1e0b5bfbb2a1",
                        "name": "NVIDIA H100 80GB HBM3", "memory_total_bytes": 85520809984}]}},
]


def outbox():
    lines = [json.dumps(e) for e in ENTRIES]
    put("outbox_journal", "five_entries", "\n".join(lines))
    put("outbox_journal", "compacted", "\n".join([json.dumps({"compacted_through": 2})] + lines[2:]))
    put("outbox_journal", "torn_tail", "\n".join(lines[:3]) + "\n!HWO1\x10\x00\x00\x00ab")
    put("outbox_journal", "seq_goes_back", "\n".join([lines[2], lines[0]]))
    put("outbox_journal", "not_entry", '{"seq":1}\n[1]\n{"seq":0,"id":"x","type":"t","time_ms":0,"data":{}}')
    put("outbox_journal", "marker_late", lines[0] + '\n{"compacted_through":9}')
    put("outbox_journal", "raw_journal", b"HWO1" + struct.pack("<II", 3, 0) + b"abc")
    page = {"entries": ENTRIES, "next_after": 5}
    put("outbox_entries", "page", json.dumps(page))
    odd = {"entries": [
        {"seq": 9, "type": "job.exited", "data": {"job_id": "job-of-another-host", "exit_code": 1}},
        {"seq": "10", "type": "job.started", "data": {"job_id": ""}},
        {"seq": 1e300, "type": "x.unknown", "data": [1]},
        {"seq": -5, "type": "host.telemetry", "time_ms": {"a": 1}, "data": {"host_id": "host-evil"}},
        {"seq": 11, "type": "job.failed", "data": {"job_id": "job-1a2b3c", "reason": "x" * 300}},
        {"seq": 12, "type": "job.accepted", "data": {"job_id": "job-2", "gpus": ["GPU-x", 3]}},
        7, None]}
    put("outbox_entries", "odd_entries", json.dumps(odd))


# ---------------------------------------------------------------------------------------------
# CSRs from the real openssl: each allowed key type, and refused ones (small RSA, other curves,
# DSA-free requests with extensions that must not be copied).
def csrs():
    with tempfile.TemporaryDirectory() as tmp:
        def req(name, keyargs, extra=()):
            key = os.path.join(tmp, name + ".key")
            subprocess.run(["openssl", "genpkey", *keyargs, "-out", key], check=True,
                           capture_output=True)
            pem = subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", "/CN=" + name,
                                  *extra], check=True, capture_output=True).stdout
            put("csr", name + ".pem", pem)
            der = subprocess.run(["openssl", "req", "-outform", "DER"], input=pem, check=True,
                                 capture_output=True).stdout
            put("csr", name + ".der", der)

        req("p256", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
        req("p384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"])
        req("ed25519", ["-algorithm", "ED25519"])
        req("rsa2048", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        req("rsa1024", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"])
        req("secp256k1", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"])
        req("brainpool", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:brainpoolP256r1"])
        req("p256_ca_san", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            ["-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "subjectAltName=URI:hwledger://admin/root,URI:hwledger://server,DNS:evil",
             "-addext", "extendedKeyUsage=serverAuth,clientAuth,codeSigning"])
        req("ed448", ["-algorithm", "ED448"])


if __name__ == "__main__":
    http()
    bodies()
    models()
    gguf()
    safetensors()
    probes()
    outbox()
    csrs()
    total = sum(f.stat().st_size for f in CORPUS.rglob("*") if f.is_file())
    print(f"corpus: {sum(1 for f in CORPUS.rglob('*') if f.is_file())} files, {total} bytes")
