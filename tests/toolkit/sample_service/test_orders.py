from orders import customers_with_order_counts, invoice_lines, order_total
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session


async def test_customers_with_order_counts(session: AsyncSession) -> None:
    assert await customers_with_order_counts(session) == {"ada": 2, "grace": 1}


async def test_order_total(session: AsyncSession) -> None:
    assert await order_total(session, 3) == 7


def test_invoice_lines(sync_session: Session) -> None:
    assert invoice_lines(sync_session) == ["ada: 30", "ada: 12", "grace: 7"]
