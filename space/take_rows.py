"""The page's take rows (Gradio layer): for runs of several takes, a row per take with its seed, mix, stems, bundle
and keep button, above the one-song players, which are hidden then (take 1 is shown once)."""
import gradio as gr


def take_rows(count: int) -> tuple[gr.Column, list[tuple]]:
    """A row per take (shown for runs of 2 or more takes): its title (take, seed, whether it is the kept one), its
    mix and stems, its bundle and its keep button. Each row: (row, title, mix, vocal, instrumental, bundle, keep)."""
    rows = []
    with gr.Column(visible=False, elem_id="takes") as box:
        gr.Markdown("**Takes**: the same song with the next seeds. A run makes all the sections it was asked for in "
                    "every take, and a take is kept once the run is done: keep the one you like best, and every take "
                    "goes on from it with the next section. To choose after each section, make 1 section a run.",
                    elem_id="takes-head")
        player = lambda label, **kw: gr.Audio(label=label, type="filepath", interactive=False, buttons=["download"],
                                              **kw)
        for take in range(1, count + 1):
            with gr.Column(visible=False, variant="panel", elem_id=f"take-row-{take}") as row:
                title = gr.Markdown(f"**Take {take}**", elem_id=f"take-title-{take}")
                mix = player(f"Take {take}", elem_id=f"take-{take}")
                with gr.Row():
                    vocal = player("Vocal stem", elem_id=f"take-{take}-vocal")
                    instrumental = player("Instrumental stem", elem_id=f"take-{take}-instrumental")
                with gr.Row():
                    bundle = gr.File(label=f"Take {take}: song file to continue later (.npz)", interactive=False,
                                     scale=2)  # room for its name
                    keep = gr.Button(f"Keep take {take} and go on →", elem_id=f"keep-{take}", size="sm", scale=1)
            rows.append((row, title, mix, vocal, instrumental, bundle, keep))
    return box, rows


def take_title(take: dict) -> str:
    """'**Take 2** · seed 43 · ✓ the take you kept, gone on' (the kept take's own row), '… · from take 2' (the others
    of a run that went on from a kept take)."""
    title = f"**Take {take['take']}** · seed {take['seed']}"
    kept = take.get("kept")
    if kept is None:
        return title
    return title + (" · ✓ the take you kept, gone on" if kept == take["take"] else f" · from take {kept}, the one kept")


def show_takes(made: list | None, count: int) -> list:
    """The layout for the last run's takes: the single song's players (shown for one take only: with several, take 1
    is in its row, not twice), the takes box (shown for several), then (row, title, mix, vocal, instrumental, bundle)
    of each of the `count` rows."""
    made = made or []
    updates = [gr.Column(visible=len(made) <= 1), gr.Column(visible=len(made) > 1)]
    for take in made[:count]:
        label = f"Take {take['take']} · seed {take['seed']}"
        updates += [gr.Column(visible=True), take_title(take), gr.Audio(take["mix"], label=label),
                    gr.Audio(take["vocal"]), gr.Audio(take["instrumental"]), gr.File(take["bundle"])]
    for _ in range(len(made), count):
        updates += [gr.Column(visible=False), *[gr.skip()] * 5]
    return updates
