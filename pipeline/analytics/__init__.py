"""Historical analysis: saved queries, ad-hoc SQL, and the PNG report."""
