// The priority groups of UU 25/2009 (Pasal 29) as the API names them.
export const PRIORITIES = ["elderly", "disability", "pregnant", "nursing", "children"];
