import io

from shopfloor.app.local_runner import ProgressStream


def test_step_seconds_add_up_over_loop_iterations_sharing_a_name():
    """A ParallelFor's iterations log under one step name: each start/finish pair counts, none is lost."""
    stream = ProgressStream(io.StringIO(), io.StringIO())
    stream.write("Executing task 'hpo-worker'\nExecuting task 'hpo-worker'\n")
    stream.write("Task 'hpo-worker' finished with status SUCCESS\n")
    first = stream.step_seconds["hpo-worker"]
    stream.write("Task 'hpo-worker' finished with status SUCCESS\n")
    assert stream.step_seconds["hpo-worker"] >= first >= 0
    assert stream.failed_step is None
    stream.write("Executing task 'train'\nTask 'train' finished with status FAILURE\n")
    assert set(stream.step_seconds) == {"hpo-worker", "train"}
    assert stream.failed_step == "train"
