import { type DocumentNode, type FieldNode, Kind, type OperationDefinitionNode, type SelectionSetNode } from 'graphql';

/**
 * The root fields of an operation as they execute: fields written directly, and those inside inline
 * fragments (`... on Subscription { x }`) and named fragments (`...F`) at the root. Limits and the
 * audit log read the root fields through this, so wrapping a field in a fragment changes nothing
 * about how it is counted or recorded. `@skip`/`@include` are not evaluated (a skipped field still
 * counts). Fragment cycles are refused by validation before this runs; each fragment is read once.
 */
export function rootFields(op: OperationDefinitionNode, document: DocumentNode): FieldNode[] {
  const selections = op.selectionSet.selections;
  // the common case: every root selection is a field (no allocation beyond the result)
  if (selections.every((s) => s.kind === Kind.FIELD)) return selections as FieldNode[];
  const out: FieldNode[] = [];
  const seen = new Set<string>();
  const walk = (set: SelectionSetNode) => {
    for (const s of set.selections) {
      if (s.kind === Kind.FIELD) out.push(s);
      else if (s.kind === Kind.INLINE_FRAGMENT) walk(s.selectionSet);
      else if (!seen.has(s.name.value)) {
        seen.add(s.name.value);
        const def = document.definitions.find((d) => d.kind === Kind.FRAGMENT_DEFINITION && d.name.value === s.name.value);
        if (def?.kind === Kind.FRAGMENT_DEFINITION) walk(def.selectionSet);
      }
    }
  };
  walk(op.selectionSet);
  return out;
}
