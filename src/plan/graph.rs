//! A plan's tasks as a petgraph DAG.
//!
//! The plan file stores tasks with string ids and `after` lists (petgraph's own serialization
//! is positional and would make plan diffs unreadable); this module rebuilds the graph, checks
//! that every dependency exists and that there is no cycle, and gives the executor and
//! `explain --dot` what they need.

use std::collections::HashMap;
use std::fmt::Write;

use petgraph::Direction;
use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};

use super::Task;

pub struct TaskGraph<'a> {
    pub tasks: &'a [Task],
    graph: DiGraph<usize, ()>,
    nodes: Vec<NodeIndex>,
}

impl<'a> TaskGraph<'a> {
    /// Builds the DAG; the error names a duplicate id, an unknown dependency or a cycle.
    pub fn new(tasks: &'a [Task]) -> Result<TaskGraph<'a>, String> {
        let mut graph = DiGraph::with_capacity(tasks.len(), tasks.len());
        let mut by_id = HashMap::with_capacity(tasks.len());
        let mut nodes = Vec::with_capacity(tasks.len());
        for (i, t) in tasks.iter().enumerate() {
            let n = graph.add_node(i);
            if by_id.insert(t.id.as_str(), n).is_some() {
                return Err(format!("task id {} appears twice", t.id));
            }
            nodes.push(n);
        }
        for (i, t) in tasks.iter().enumerate() {
            for dep in &t.after {
                let Some(&from) = by_id.get(dep.as_str()) else {
                    return Err(format!(
                        "task {} waits for {dep}, which is not in the plan",
                        t.id
                    ));
                };
                graph.add_edge(from, nodes[i], ());
            }
        }
        if let Err(cycle) = toposort(&graph, None) {
            return Err(format!(
                "the tasks form a cycle through {}",
                tasks[graph[cycle.node_id()]].id
            ));
        }
        Ok(TaskGraph {
            tasks,
            graph,
            nodes,
        })
    }

    /// Indices of the tasks `i` waits for.
    pub fn dependencies(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph
            .neighbors_directed(self.nodes[i], Direction::Incoming)
            .map(|n| self.graph[n])
    }

    /// Indices of the tasks that wait for `i`.
    pub fn dependents(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph
            .neighbors_directed(self.nodes[i], Direction::Outgoing)
            .map(|n| self.graph[n])
    }

    /// The graph in Graphviz DOT, tasks labelled by id and grouped by kind with colors.
    pub fn dot(&self) -> String {
        let mut out = String::from(
            "digraph plan {\n  rankdir=LR;\n  node [shape=box, style=filled, fontname=\"monospace\"];\n",
        );
        for t in self.tasks {
            let color = match t.action.kind() {
                "upload" | "download" => "lightblue",
                "pin" | "release" | "stage" => "lightgrey",
                "write_manifest" | "commit" => "gold",
                _ => "palegreen",
            };
            let _ = writeln!(out, "  \"{}\" [fillcolor={color}];", escape(&t.id));
        }
        for t in self.tasks {
            for dep in &t.after {
                let _ = writeln!(out, "  \"{}\" -> \"{}\";", escape(dep), escape(&t.id));
            }
        }
        out.push_str("}\n");
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;

    fn task(id: &str, after: &[&str]) -> Task {
        Task {
            id: id.to_string(),
            action: Action::Release {
                database: "d".into(),
            },
            after: after.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn cycles_unknown_and_duplicate_ids_are_refused() {
        let ok = [task("a", &[]), task("b", &["a"]), task("c", &["a", "b"])];
        let g = TaskGraph::new(&ok).unwrap();
        assert_eq!(g.dependents(0).count(), 2);
        assert_eq!(g.dependencies(2).count(), 2);
        let cycle = [task("a", &["c"]), task("b", &["a"]), task("c", &["b"])];
        assert!(TaskGraph::new(&cycle).err().unwrap().contains("cycle"));
        let unknown = [task("a", &["zz"])];
        assert!(TaskGraph::new(&unknown).err().unwrap().contains("zz"));
        let dup = [task("a", &[]), task("a", &[])];
        assert!(TaskGraph::new(&dup).err().unwrap().contains("twice"));
    }
}
