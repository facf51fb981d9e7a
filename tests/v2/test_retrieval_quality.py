"""Retrieval quality: a labelled question set over a corpus built here, recall@5 for vector-only, keyword-only
and hybrid search. Questions come in two kinds: paraphrases that share few words with their document (vectors
should find them) and part numbers (exact tokens: the full-text index should). Hybrid must be at least as good as
either alone. The corpus is ingested through the API (real extraction, chunking, embedding); search runs the
workers' code against the stack's database."""

import io

import openai
import pytest
from sqlalchemy import create_engine, text

from tests.stack import Stack

FILLER = ("Maintenance of this equipment is logged weekly by the engineering crew of the station. "
          "Report faults to the duty officer on the main deck.")
ITEMS = [  # (name, what it does, a question in other words)
    ("Kelvin-9 chiller", "keeps perishable food frozen in the galley storage",
     "Which machine stops the kitchen supplies from spoiling?"),
    ("Aurora lamp array", "grows lettuce and herbs in the greenhouse with violet light",
     "What helps the salad plants grow?"),
    ("Tessera scrubber", "removes carbon dioxide from the cabin atmosphere",
     "What cleans the air the crew breathes?"),
    ("Halcyon pump", "moves waste water to the recycling tanks", "Which equipment transports sewage for reuse?"),
    ("Meridian beacon", "broadcasts the station's position to approaching ships",
     "How do arriving vessels know where we are?"),
    ("Corvid drone", "inspects the hull for micrometeorite damage",
     "What checks the outer shell for impacts from space debris?"),
    ("Lumen console", "displays the crew's medical vitals in the infirmary",
     "Where can the doctor see the heart rates of patients?"),
    ("Obsidian vault", "stores the station's encrypted backups", "Where are the secured copies of our data kept?"),
    ("Sable treadmill", "lets astronauts exercise to prevent bone loss",
     "How do crew members keep their skeletons strong?"),
    ("Quill printer", "fabricates spare parts from titanium powder",
     "What makes replacement components out of metal dust?"),
    ("Nimbus humidifier", "keeps moisture levels comfortable in the sleeping quarters",
     "What stops the bedrooms from getting too dry?"),
    ("Vesper radio", "relays voice calls to mission control on Earth",
     "How does the team talk to headquarters back home?"),
    ("Garnet furnace", "melts ice mined from comets into drinking water",
     "What turns frozen comet material into something we can drink?"),
    ("Pylon battery bank", "stores solar energy for the night side of the orbit",
     "What powers the station when the sun is hidden?"),
    ("Wren arm", "captures cargo capsules and docks them at the port hatch",
     "What grabs incoming supply deliveries?"),
    ("Cinder extinguisher", "floods compartments with inert gas to smother fires", "What puts out a blaze in a room?"),
]


def part_number(i: int) -> str:
    return f"ZX-{4711 + i * 37}"


@pytest.fixture(scope="module")
def corpus(stack: Stack, client: openai.OpenAI) -> tuple[str, dict[str, str]]:
    """One file per item in one vector store; returns (store id, item name -> file id)."""
    files = [(f"{name.split()[0].lower()}.md",
              io.BytesIO(f"# {name}\n\nThe {name} {does}. Part number {part_number(i)}. {FILLER}\n".encode()))
             for i, (name, does, _) in enumerate(ITEMS)]
    vs = client.vector_stores.create(name="quality")
    batch = client.vector_stores.file_batches.upload_and_poll(vs.id, files=files, poll_interval_ms=100)
    assert batch.file_counts.completed == len(ITEMS), batch
    ids = {f.id: f for f in client.vector_stores.file_batches.list_files(batch.id, vector_store_id=vs.id,
                                                                         limit=100).data}
    names = {client.files.retrieve(fid).filename: fid for fid in ids}
    return vs.id, {name: names[f"{name.split()[0].lower()}.md"] for name, _, _ in ITEMS}


def test_hybrid_recall_at_5_is_at_least_as_good_as_either(stack: Stack, corpus: tuple[str, dict[str, str]],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from worker import retrieval

    store, file_of = corpus
    questions = [(q, file_of[name]) for name, _, q in ITEMS]
    questions += [(f"Which unit has part number {part_number(i)}?", file_of[name])
                  for i, (name, _, _) in enumerate(ITEMS)]
    engine = create_engine(stack.env["DATABASE_URL"])
    recall = {}
    with engine.connect() as conn:
        project = conn.execute(text("SELECT project_id FROM vector_store WHERE id = :id"), {"id": store}).scalar()
        for mode in ("vector", "keyword", "hybrid"):
            found = 0
            for q, want in questions:
                hits = retrieval.search(conn, str(project), [store], q, limit=5, mode=mode)  # type: ignore[arg-type]
                found += want in {h.file_id for h in hits}
            recall[mode] = found / len(questions)
            conn.rollback()
    engine.dispose()
    with capsys.disabled():
        figures = ", ".join(f"{m} {r:.2f}" for m, r in recall.items())
        print(f"\nrecall@5 over {len(questions)} questions: {figures}")
    assert recall["hybrid"] >= recall["vector"] and recall["hybrid"] >= recall["keyword"], recall
    assert recall["hybrid"] >= 0.9, recall
