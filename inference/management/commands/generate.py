"""python manage.py generate: run the numpy engine on one prompt, streaming text or printing JSON."""

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inference.cluster.pipeline_stepper import ClusterError
from inference.core.engine import DEFAULT_CONTEXT_LENGTH, Engine
from inference.core.gguf_loader import GGUFError
from inference.model_files import DEFAULT_MODEL, resolve_model_path
from inference.cluster.planner import PlanError
from inference.core.sampling import SamplingParams
from inference.services import cluster_coordinator


class Command(BaseCommand):
    help = "Generate text with the numpy LLM engine from a GGUF model."

    def add_arguments(self, parser):
        parser.add_argument("--model", default=DEFAULT_MODEL, help="model name or path to a .gguf file")
        prompt = parser.add_mutually_exclusive_group(required=True)
        prompt.add_argument("--prompt", help="raw text, tokenized without added special tokens")
        prompt.add_argument("--prompt-file", help="file whose text is used as a raw prompt")
        prompt.add_argument("--chat", help="a user message, wrapped in the model's chat template")
        parser.add_argument("--max-tokens", type=int, default=128)
        parser.add_argument(
            "--context", type=int, default=DEFAULT_CONTEXT_LENGTH,
            help="context length in tokens (prompt and answer); the KV cache every stage holds grows with it",
        )
        parser.add_argument("--temperature", type=float, default=0.0, help="0 is greedy")
        parser.add_argument("--top-p", type=float, default=1.0)
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--json", action="store_true", help="print one JSON object instead of streaming")
        parser.add_argument("--cluster", action="store_true", help="run through a pipeline over the live nodes")
        parser.add_argument("--nodes", type=int, help="with --cluster: spread over exactly this many nodes")
        parser.add_argument(
            "--weight-by-throughput", action="store_true", help="with --cluster: scale shares by measured GFLOP/s"
        )

    def handle(self, *args, **options):
        if (options["nodes"] is not None or options["weight_by_throughput"]) and not options["cluster"]:
            raise CommandError("--nodes and --weight-by-throughput need --cluster")
        if options["context"] < 2:
            raise CommandError(f"--context must be at least 2 tokens, not {options['context']}")
        try:
            model_path = resolve_model_path(options["model"], settings.MODEL_CACHE_DIR)
            if options["cluster"]:
                engine = cluster_coordinator(
                    model_path, options["model"], options["nodes"], options["weight_by_throughput"], options["context"]
                )
            else:
                engine = Engine(model_path, context_length=options["context"])
        except (GGUFError, FileNotFoundError, ValueError) as error:
            raise CommandError(str(error)) from None
        if options["chat"] is not None:
            prompt_ids = engine.tokenizer.encode_chat([{"role": "user", "content": options["chat"]}])
        elif options["prompt_file"] is not None:
            with open(options["prompt_file"], encoding="utf-8") as file:
                prompt_ids = engine.tokenizer.encode(file.read())
        else:
            prompt_ids = engine.tokenizer.encode(options["prompt"])
        params = SamplingParams(temperature=options["temperature"], top_p=options["top_p"], seed=options["seed"])
        try:
            generation = engine.generate(prompt_ids, options["max_tokens"], params)
        except ValueError as error:
            raise CommandError(str(error)) from None

        try:
            for delta in generation:
                if not options["json"]:
                    self.stdout.write(delta.text, ending="")
                    self.stdout.flush()
        except (PlanError, ClusterError) as error:
            raise CommandError(str(error)) from None
        result, stats = generation.results[0], generation.stats
        if options["json"]:
            report = {
                "prompt_token_ids": result.prompt_ids,
                "token_ids": result.token_ids,
                "text": result.text,
                "prompt_tokens": stats.prompt_tokens,
                "ttft_s": stats.ttft_s,
                "prefill_tok_s": stats.prefill_tok_s,
                "decode_tok_s": stats.decode_tok_s,
            }
            if options["cluster"]:
                report.update(
                    plan=stats.plans[-1],
                    stages=[stage.per_token() for stage in stats.stages],
                    dead_nodes=stats.dead_nodes,
                    recoveries=stats.recoveries,  # each re-plan: the nodes declared dead and why
                )
            self.stdout.write(json.dumps(report, ensure_ascii=False))
        else:
            self.stdout.write(
                f"\n[{stats.prompt_tokens} prompt tokens, {stats.generated_tokens} generated ({result.finish_reason}); "
                f"TTFT {stats.ttft_s:.3f} s, prefill {stats.prefill_tok_s:.1f} tok/s, decode {stats.decode_tok_s:.1f} tok/s]"
            )
